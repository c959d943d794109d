// sparsectl: command-line client of the sparsed daemon.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <string>

#include "commands.h"
#include "common.h"

int main(int argc, char** argv) {
  using sparsed::client::cli::Context;
  Context ctx;
  const char* env = std::getenv("SPARSED_ADDR");
  ctx.server = env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";

  CLI::App app{"sparsectl: command-line client of the sparsed sparse tensor daemon", "sparsectl"};
  app.option_defaults()->always_capture_default();
  app.add_option("--server", ctx.server, "Daemon address host:port (default: $SPARSED_ADDR)")
      ->capture_default_str();
  app.add_option("--timeout", ctx.timeout_seconds,
                 "Deadline of each call in seconds (0: none; transfers included)")
      ->check(CLI::NonNegativeNumber)
      ->type_name("SECONDS");
  app.require_subcommand(1);
  app.fallthrough();  // global options are accepted after the command too

  sparsed::client::cli::AddTensorCommands(app, ctx);
  sparsed::client::cli::AddComputeCommands(app, ctx);
  sparsed::client::cli::AddTransformCommands(app, ctx);
  sparsed::client::cli::AddInspectCommand(app, ctx);
  sparsed::client::cli::AddAdminCommands(app, ctx);
  sparsed::client::cli::AddTuneCommands(app, ctx);
  sparsed::client::cli::AddKernelCommands(app, ctx);
  sparsed::client::cli::AddCheckpointCommands(app, ctx);
  sparsed::client::cli::AddLayerCommands(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; usage errors exit 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  return ctx.exit_code;
}
