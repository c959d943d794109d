// Pattern changes of a SparseLinear: gradual magnitude pruning and RigL's
// drop-and-grow. Selection runs on the device (TopK); only indices and the
// new index structure pass through the host.
#include <algorithm>
#include <cmath>

#include "layer_internal.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::train {
namespace {

// Dense gradient rows held at once when RigL's tile_rows is 0: tiles of at
// most this many f32 entries (16 MiB), and at least one row.
constexpr int64_t kDefaultTileEntries = int64_t{1} << 22;

int64_t Total(const LayerData& layer) {
  return layer.config.out_features * layer.config.in_features;
}

bool PruningDue(const GradualPruning& p, int64_t t) {
  if (!p.enabled || t < p.start_step) return false;
  const int64_t since = t - p.start_step;
  return since % p.interval == 0 && since / p.interval <= p.count;
}

// A growth candidate: its score (|dense gradient|) and row-major position.
struct Candidate {
  float score;
  int64_t position;
};
// Best first: larger score, then the earlier position (TopK's tie rule).
bool Better(const Candidate& a, const Candidate& b) {
  return a.score != b.score ? a.score > b.score : a.position < b.position;
}

// The k inactive positions of largest |dense gradient| (dYᵀ·X of the last
// backward batch), walking the gradient in row tiles and keeping only the
// best k candidates across tiles. Sorted by position.
absl::StatusOr<std::vector<int64_t>> GrowthPositions(Backend& backend, const LayerData& layer,
                                                     int64_t k) {
  const int64_t rows = layer.config.out_features, cols = layer.config.in_features;
  int64_t tile_rows = layer.config.rigl.tile_rows;
  if (tile_rows <= 0) tile_rows = std::max<int64_t>(1, kDefaultTileEntries / cols);
  tile_rows = std::min(tile_rows, rows);
  std::vector<Candidate> best;
  for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
    const int64_t r1 = std::min(rows, r0 + tile_rows);
    DenseMatmulArgs mm;
    mm.a = &*layer.last_dz;
    mm.transpose_a = true;
    mm.b = &*layer.last_x;
    mm.row_begin = r0;
    mm.row_end = r1;
    ASSIGN_OR_RETURN(Tensor tile, backend.DenseMatmul(mm));
    RETURN_IF_ERROR(backend.GrowthScores(tile, layer.weight, r0));
    ASSIGN_OR_RETURN(Tensor flat, FlatValues(tile));
    const int64_t kk = std::min(k, flat.desc().shape[0]);
    ASSIGN_OR_RETURN(TopKResult top, backend.TopK(flat, kk, TopKOrder::kLargest));
    for (size_t i = 0; i < top.indices.size(); ++i) {
      if (top.values[i] < 0) break;  // -1 marks an active position; the rest are too
      best.push_back({top.values[i], r0 * cols + top.indices[i]});
    }
    if (static_cast<int64_t>(best.size()) > k) {
      std::nth_element(best.begin(), best.begin() + k, best.end(), Better);
      best.resize(k);
    }
  }
  if (static_cast<int64_t>(best.size()) != k) {
    return absl::InternalError(
        StrCat("rigl: found ", best.size(), " inactive growth candidates, needed ", k));
  }
  std::vector<int64_t> positions(k);
  for (int64_t i = 0; i < k; ++i) positions[i] = best[i].position;
  std::sort(positions.begin(), positions.end());
  return positions;
}

}  // namespace

absl::StatusOr<bool> MaybePrune(Backend& backend, LayerData& layer) {
  const GradualPruning& p = layer.config.pruning;
  if (!PruningDue(p, layer.step)) return false;
  const int64_t total = Total(layer);
  const int64_t keep =
      total - std::llround(GradualSparsity(p, layer.step) * static_cast<double>(total));
  const int64_t nnz = layer.weight.desc().nnz;
  if (keep >= nnz) return true;  // already as sparse; pruning never grows
  ASSIGN_OR_RETURN(Tensor values, FlatValues(layer.weight));
  ASSIGN_OR_RETURN(TopKResult top, backend.TopK(values, keep, TopKOrder::kLargestMagnitude));
  std::vector<int64_t> source = std::move(top.indices);
  std::sort(source.begin(), source.end());  // storage order is row-major position order
  ASSIGN_OR_RETURN(HostPattern old, ReadPattern(layer.weight));
  HostPattern next;
  next.rows = old.rows;
  next.cols = old.cols;
  next.row_ptr.assign(old.rows + 1, 0);
  next.col_idx.reserve(keep);
  size_t s = 0;
  for (int64_t r = 0; r < old.rows; ++r) {
    while (s < source.size() && source[s] < old.row_ptr[r + 1]) {
      next.col_idx.push_back(old.col_idx[source[s]]);
      ++s;
    }
    next.row_ptr[r + 1] = next.nnz();
  }
  RETURN_IF_ERROR(ApplyPattern(backend, layer, next, source));
  return true;
}

absl::Status MaybeRigl(Backend& backend, LayerData& layer, StepReport& report) {
  const RiglConfig& rigl = layer.config.rigl;
  const int64_t t = layer.step;
  if (!rigl.enabled || t % rigl.interval != 0 || t >= rigl.end_step) return absl::OkStatus();
  // Without a backward since the layer was made there is no gradient to grow by.
  if (!layer.last_x.has_value()) return absl::OkStatus();
  const int64_t nnz = layer.weight.desc().nnz;
  const int64_t inactive = Total(layer) - nnz;
  const int64_t k = std::min<int64_t>(
      std::llround(RiglDropFraction(rigl, t) * static_cast<double>(nnz)), inactive);
  if (k <= 0) return absl::OkStatus();

  // Growth is scored against the pattern before the drop, so a dropped
  // position cannot come straight back.
  ASSIGN_OR_RETURN(std::vector<int64_t> grow, GrowthPositions(backend, layer, k));
  ASSIGN_OR_RETURN(Tensor values, FlatValues(layer.weight));
  ASSIGN_OR_RETURN(TopKResult drop, backend.TopK(values, k, TopKOrder::kSmallestMagnitude));
  std::vector<char> dropped(nnz, 0);
  for (int64_t i : drop.indices) dropped[i] = 1;

  ASSIGN_OR_RETURN(HostPattern old, ReadPattern(layer.weight));
  HostPattern next;
  next.rows = old.rows;
  next.cols = old.cols;
  next.row_ptr.assign(old.rows + 1, 0);
  next.col_idx.reserve(nnz);
  std::vector<int64_t> source;
  source.reserve(nnz);
  size_t g = 0;
  for (int64_t r = 0; r < old.rows; ++r) {
    // Merge the row's surviving entries with its grown ones, by column.
    int64_t p = old.row_ptr[r];
    const int64_t end = old.row_ptr[r + 1];
    while (true) {
      while (p < end && dropped[p]) ++p;
      const bool has_old = p < end;
      const bool has_new = g < grow.size() && grow[g] / old.cols == r;
      if (!has_old && !has_new) break;
      if (has_new && (!has_old || grow[g] % old.cols < old.col_idx[p])) {
        next.col_idx.push_back(grow[g] % old.cols);
        source.push_back(-1);
        ++g;
      } else {
        next.col_idx.push_back(old.col_idx[p]);
        source.push_back(p);
        ++p;
      }
    }
    next.row_ptr[r + 1] = next.nnz();
  }
  RETURN_IF_ERROR(ApplyPattern(backend, layer, next, source));
  report.dropped = k;
  report.grown = k;
  return absl::OkStatus();
}

}  // namespace sparsed::train
