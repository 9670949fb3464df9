//! `ferry`: start, plan and follow ferry's workflows. See `ferry --help`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(ferry_cli::run(std::env::args_os()).await)
}
