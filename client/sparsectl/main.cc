// sparsectl: command-line client of the sparsed daemon.
#include <CLI/CLI.hpp>
#include <string>

#include "commands.h"
#include "common.h"

int main(int argc, char** argv) {
  using sparsed::client::cli::Context;
  Context ctx;

  CLI::App app{"sparsectl: command-line client of the sparsed sparse tensor daemon", "sparsectl"};
  app.option_defaults()->always_capture_default();
  app.set_version_flag("--version", "sparsectl " SPARSED_VERSION);
  sparsed::client::cli::AddGlobalOptions(app, ctx);
  // Commands run from parse callbacks, so the environment's token is filled
  // in by a callback that runs before them.
  app.parse_complete_callback([&ctx] { sparsed::client::cli::ApplyGlobalEnv(ctx); });
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
  sparsed::client::cli::AddGraphCommands(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; usage errors exit 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  return ctx.exit_code;
}
