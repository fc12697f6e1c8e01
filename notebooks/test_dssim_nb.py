"""Tests of the notebook helpers (run by .ci/run): plain tick labels, counts from zero, legends
off the data, figures written only on request, predictions checked or answered, axes labelled
in one call."""
import contextlib
import io
import os
import pathlib
import sys
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import dssim_nb  # noqa: E402


def labels(axis):
    fig = axis.axes.figure
    fig.canvas.draw()
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


def test_plain_ticks_on_log_axes():
    fig, ax = plt.subplots()
    ax.plot([20, 30, 600, 1400], [1, 2, 3, 4])
    ax.set_xscale("log")
    dssim_nb.finish(fig)
    text = labels(ax.xaxis)
    assert text, "a log axis keeps labels"
    assert all("10" not in t or t.replace(",", "").isdigit() for t in text), text
    assert not any(c in "".join(text) for c in "×^$e"), text
    assert "1,000" in text or "100" in text, text


def test_counts_start_at_zero_and_legend_leaves_the_data():
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0, 0, 0], label="errors")
    ax.legend()
    dssim_nb.finish(fig)
    assert ax.get_ylim()[0] == 0, ax.get_ylim()
    assert not any(t.startswith("-") or t.startswith("−") for t in labels(ax.yaxis))
    box = ax.get_legend().get_window_extent()
    assert box.x0 >= ax.get_window_extent().x1, "the legend sits to the right of the axes"


def test_label_sets_scales_labels_title_and_legend_in_one_call():
    fig, ax = plt.subplots()
    ax.plot([1, 2, 4], [1, 10, 100], label="data")
    dssim_nb.label(ax, "load", "latency", "A title", xscale=("log", {"base": 2}), yscale="log",
                   legend={"loc": "lower right"}, title_size=9)
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert ax.xaxis.get_transform().base == 2
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("load", "latency", "A title")
    assert ax.title.get_fontsize() == 9
    assert ax.get_legend() is not None and ax.get_legend()._loc == 4, "lower right"
    fig, ax = plt.subplots()
    ax.plot([1, 2], [1, 2], label="data")
    dssim_nb.label(ax, y="only y")
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("", "only y", "")
    assert ax.get_xscale() == "linear" and ax.get_legend() is None, "nothing else set"


def test_your_answer_is_drawn_only_when_given():
    fig, ax = plt.subplots()
    ax.bar(["a"], [3])
    dssim_nb.your_answer(ax, None, "{:,.0f}/s", legend=True)
    assert not ax.lines and ax.get_legend() is None, "no answer: nothing drawn"
    dssim_nb.your_answer(ax, 1234.4, "{:,.0f}/s", legend=True)
    (line,) = ax.lines
    assert line.get_label() == "your answer: 1,234/s" and line.get_ydata()[0] == 1234.4
    assert ax.get_legend() is not None
    fig, ax = plt.subplots()
    dssim_nb.your_answer(ax, 5, "{}", axis="x")
    assert ax.lines[0].get_xdata()[0] == 5 and ax.get_legend() is None, "vertical, no legend"


def test_throughput_and_p99_share_the_x_axis():
    import pandas as pd
    pts = pd.DataFrame({"n": [1, 2, 4], "throughput_rps": [10, 20, 15], "p99_ms": [5, 6, 40]})
    fig, ax1 = dssim_nb.throughput_and_p99(pts["n"], pts, "nodes")
    ax2 = [a for a in fig.axes if a is not ax1][0]
    assert ax1.get_xlabel() == "nodes" and ax1.get_ylabel() == "throughput (requests/s)"
    assert ax2.get_ylabel() == "p99 latency (ms)"
    assert list(ax1.lines[0].get_ydata()) == [10, 20, 15] and list(ax2.lines[0].get_ydata()) == [5, 6, 40]


def test_figures_written_only_on_request():
    with tempfile.TemporaryDirectory() as d:
        os.environ.pop("DSSIM_FIGURES", None)
        fig, ax = plt.subplots()
        ax.plot([1, 2])
        dssim_nb.finish(fig, "x")
        assert not any(pathlib.Path(d).iterdir())
        os.environ["DSSIM_FIGURES"] = d
        try:
            dssim_nb.finish(fig, "x")
        finally:
            del os.environ["DSSIM_FIGURES"]
        assert (pathlib.Path(d) / "x.png").exists()


def test_check_says_how_close_or_shows_the_answer():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert dssim_nb.check(None, 230.0, "ms") is None
        assert dssim_nb.check(220, 230.0, "ms") is True
        assert dssim_nb.check(50, 230.0, "ms") is False
        assert dssim_nb.check("ttl_only", "ttl_only") is True
    text = out.getvalue()
    assert "measured 230 ms" in text and "well predicted" in text and "too low" in text, text


def test_live_draws_the_static_grid_without_a_widget_front_end():
    os.environ["DSSIM_NB_STATIC"] = "1"
    calls = []

    def draw(ax, rate=1):
        calls.append(rate)
        ax.bar(["x"], [rate])

    before = len(plt.get_fignums())
    dssim_nb.live(draw, [dict(rate=1), dict(rate=2)], rate=(1, 10))
    assert calls == [1, 2]
    assert len(plt.get_fignums()) == before + 1, "one figure, the settings side by side"


if __name__ == "__main__":
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
    for t in tests:
        t()
        print("ok", t.__name__)
    print(f"{len(tests)} helper tests passed")
