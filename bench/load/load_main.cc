// bench/load: a load generator for the daemon, in the spirit of NVIDIA's
// perf_analyzer. Sweeps the number of concurrent clients (each on its own
// connection) or holds a fixed request rate, over one op, and prints
// throughput, p50/p90/p99 latency, errors and the server's own compute time
// as a table and, with --csv, as CSV. Stops by itself.
//
//   load --op spmm_tiny --concurrency 1,2,4,8,16
//   load --op upload --size-bytes 1048576 --concurrency 1,4
//   load --op spmm_tiny --rate 2000 --concurrency 16
//   load --op dnn_graph --dnn-layers 30 --concurrency 1,2,4
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "load_ops.h"
#include "load_runner.h"

namespace {

std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sparsed::load;
  CLI::App app{"Load generator for sparsed: throughput and latency under concurrent clients"};
  RunOptions run;
  run.address = Env("SPARSED_ADDR", "127.0.0.1:50051");
  OpOptions op_options{.name = "spmm_tiny"};
  std::vector<int> concurrency = {1, 2, 4, 8, 16};
  std::string csv;
  app.add_option("--address", run.address, "Daemon address host:port or unix:/path");
  app.add_option("--op", op_options.name, "spmm_tiny, upload, download or dnn_graph")
      ->capture_default_str();
  app.add_option("--dnn-layers", op_options.dnn_layers, "dnn_graph: layers (weights)")
      ->capture_default_str();
  app.add_option("--dnn-neurons", op_options.dnn_neurons, "dnn_graph: neurons per layer")
      ->capture_default_str();
  app.add_option("--dnn-batch", op_options.dnn_batch, "dnn_graph: rows of Y")
      ->capture_default_str();
  app.add_option("--dnn-form", op_options.dnn_form,
                 "dnn_graph: yw (Y·W) or ywt (W held transposed, Y·(Wᵀ)ᵀ: the F.linear form)")
      ->capture_default_str();
  app.add_flag("--dnn-keep", op_options.dnn_keep,
               "dnn_graph: keep the result as a handle (deleted by the same request) instead of "
               "returning it inline");
  app.add_option("--size-bytes", op_options.size_bytes, "Tensor size for upload/download")
      ->capture_default_str();
  app.add_option("--tiny-rows", op_options.tiny_rows,
                 "spmm_tiny: A is N x N CSR with 5% per row, B is N x 8 dense")
      ->capture_default_str();
  app.add_option("--concurrency", concurrency, "Client counts to sweep (comma separated)")
      ->delimiter(',');
  app.add_option("--rate", run.rate,
                 "Fixed total request rate per second, spread over the clients (open loop); "
                 "0: closed loop")
      ->capture_default_str();
  app.add_option("--warmup-s", run.warmup_seconds, "Warm-up before measuring")
      ->capture_default_str();
  app.add_option("--window-s", run.window_seconds, "Length of one measurement window")
      ->capture_default_str();
  app.add_option("--windows", run.windows, "Measurement windows per point")->capture_default_str();
  app.add_option("--csv", csv, "Also write the results as CSV to this file");
  CLI11_PARSE(app, argc, argv);
  run.connect.token = Env("SPARSED_TOKEN", "");
  run.connect.connect_timeout_seconds = 10;

  absl::StatusOr<std::unique_ptr<Op>> op = MakeOp(op_options);
  if (!op.ok()) {
    std::cerr << "load: " << op.status() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<sparsed::client::Client>> setup =
      sparsed::client::Client::Connect(run.address, run.connect);
  if (!setup.ok()) {
    std::cerr << "load: " << setup.status() << "\n";
    return 1;
  }
  if (absl::Status s = (*op)->SetUp(**setup); !s.ok()) {
    std::cerr << "load: setting up " << op_options.name << ": " << s << "\n";
    return 1;
  }
  std::ofstream csv_out;
  if (!csv.empty()) {
    csv_out.open(csv);
    csv_out << "op,clients,rate,requests,errors,throughput_per_s,p50_us,p90_us,p99_us,max_us,"
               "server_p50_us,window_spread\n";
  }
  std::printf("%s against %s: %g s warm-up, %d x %g s windows%s\n", op_options.name.c_str(),
              run.address.c_str(), run.warmup_seconds, run.windows, run.window_seconds,
              run.rate > 0 ? absl::StrFormat(", %g requests/s", run.rate).c_str() : "");
  std::printf("%8s %10s %8s %12s %10s %10s %10s %10s %12s %8s\n", "clients", "requests", "errors",
              "per_s", "p50_us", "p90_us", "p99_us", "max_us", "server_p50", "spread");
  int rc = 0;
  for (int clients : concurrency) {
    run.clients = clients;
    absl::StatusOr<RunResult> r = RunLoad(**op, run);
    if (!r.ok()) {
      std::cerr << "load: " << clients << " clients: " << r.status() << "\n";
      rc = 1;
      break;
    }
    const Summary& t = r->total;
    std::printf("%8d %10lld %8lld %12.1f %10.1f %10.1f %10.1f %10.1f %12.1f %7.1f%%\n", clients,
                static_cast<long long>(t.requests), static_cast<long long>(t.errors), t.throughput,
                t.p50_us, t.p90_us, t.p99_us, t.max_us, t.server_p50_us,
                100 * r->throughput_spread);
    std::fflush(stdout);
    if (csv_out.is_open()) {
      csv_out << absl::StrFormat("%s,%d,%g,%d,%d,%.2f,%.1f,%.1f,%.1f,%.1f,%.1f,%.4f\n",
                                 op_options.name, clients, run.rate, t.requests, t.errors,
                                 t.throughput, t.p50_us, t.p90_us, t.p99_us, t.max_us,
                                 t.server_p50_us, r->throughput_spread);
    }
    if (t.errors > 0) {
      std::cerr << "load: " << clients << " clients: " << t.errors
                << " requests failed; the first: " << r->first_error << "\n";
      rc = 1;
    }
  }
  (*op)->TearDown(**setup);
  return rc;
}
