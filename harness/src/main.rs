use clap::Parser;
use harness::cli::{Cli, Command};
use harness::exit;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::BAD_ARGUMENTS
            } else {
                0
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    // A panic is an internal error (255); the history recorded so far is already on disk.
    let result = std::panic::catch_unwind(|| run(&cli)).unwrap_or_else(|_| {
        Err(exit::Failure::internal(
            "internal error (panic); anything recorded so far is in the run directory",
        ))
    });
    match result {
        Ok(code) => std::process::exit(code),
        Err(f) => {
            eprintln!("verity: {}", f.message);
            std::process::exit(f.code);
        }
    }
}

fn run(cli: &Cli) -> Result<i32, exit::Failure> {
    let stdout = std::io::stdout();
    match &cli.command {
        Command::Check(args) => harness::check_cmd::run(args, &mut stdout.lock()),
        Command::Convert(args) => harness::convert_cmd::run(args).map(|_| exit::VALID),
        Command::List => {
            print!("{}", harness::list_cmd::render());
            Ok(exit::VALID)
        }
        Command::Report(args) => harness::report::run_cmd(args),
        Command::Serve(args) => harness::serve::run(args),
        Command::Node(args) => harness::real::node_server::run(args),
        Command::Test(args) if args.shrink => harness::shrink::run_cmd(args),
        Command::Test(args) if args.seeds.is_some() => {
            harness::sweep::run_cmd(args, args.seeds.as_deref().unwrap_or_default())
        }
        Command::Test(args) => harness::test_run::run(args).map(|run| {
            print!("{}", harness::test_run::summary(&run));
            run.validity().exit_code()
        }),
    }
}
