//! Shell completions (clap_complete) and the man page (clap_mangen), both generated from
//! the command-line definition itself.

use clap::CommandFactory;

/// The completion script for `shell` (bash, zsh, fish, elvish, powershell).
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut cmd = crate::args::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "dssim", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The man page of `dssim` and, after it, one section per subcommand, in roff.
pub fn man_page() -> String {
    let cmd = crate::args::Cli::command();
    let mut out = Vec::new();
    let _ = clap_mangen::Man::new(cmd.clone()).render(&mut out);
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("dssim-{}", sub.get_name());
        let sub = sub.clone().display_name(name.clone()).bin_name(name);
        let mut page = Vec::new();
        let man = clap_mangen::Man::new(sub);
        let _ = man.render_name_section(&mut page);
        let _ = man.render_synopsis_section(&mut page);
        let _ = man.render_description_section(&mut page);
        let _ = man.render_options_section(&mut page);
        out.extend_from_slice(&page);
    }
    String::from_utf8_lossy(&out).into_owned()
}
