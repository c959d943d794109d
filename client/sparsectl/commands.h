// Registration of the sparsectl command groups.
#pragma once

#include <CLI/CLI.hpp>

#include "common.h"

namespace sparsed::client::cli {

void AddTensorCommands(CLI::App& app, Context& ctx);      // put, get, ls, info, rm
void AddComputeCommands(CLI::App& app, Context& ctx);     // spmm
void AddTransformCommands(CLI::App& app, Context& ctx);   // convert, transpose, prune
void AddInspectCommand(CLI::App& app, Context& ctx);      // inspect
void AddAdminCommands(CLI::App& app, Context& ctx);       // status
void AddTuneCommands(CLI::App& app, Context& ctx);        // tune ls|export|import|clear
void AddKernelCommands(CLI::App& app, Context& ctx);      // kernels ls|clear|warm
void AddCheckpointCommands(CLI::App& app, Context& ctx);  // checkpoint save|restore|ls|rm
// layer create|ls|info|rm|forward|step, sddmm
void AddLayerCommands(CLI::App& app, Context& ctx);
void AddGraphCommands(CLI::App& app, Context& ctx);  // run

}  // namespace sparsed::client::cli
