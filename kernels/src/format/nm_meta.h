// Access to the N:M "meta" component (layout in tensor.h): 2:4 packs the two
// kept positions of a group into a nibble, 8 groups per i32 word, each row
// starting a new word; other n:m store one position per slot.
#pragma once

#include <cstdint>

#include "sparsed/tensor.h"

namespace sparsed::format {

// Words of packed 2:4 metadata per row.
inline int64_t PackedWordsPerRow(int64_t groups) { return (groups + 7) / 8; }

class NmMeta {
 public:
  explicit NmMeta(const Tensor& t)
      : meta_(t.data<int32_t>("meta").data()),
        n_(t.desc().nm_n),
        groups_(t.desc().nm_groups()),
        packed_(t.desc().nm_packed_2_4()) {}

  // Position (0..m-1) of slot s of group g of row r.
  int64_t Position(int64_t r, int64_t g, int64_t s) const {
    if (packed_) return (Nibble(r, g) >> (2 * s)) & 3u;
    return meta_[(r * groups_ + g) * n_ + s];
  }
  // 2:4 only: the word holding group g of row r, and that group's nibble.
  int64_t WordIndex(int64_t r, int64_t g) const { return r * PackedWordsPerRow(groups_) + g / 8; }
  uint32_t Nibble(int64_t r, int64_t g) const {
    return (static_cast<uint32_t>(meta_[WordIndex(r, g)]) >> (4 * (g % 8))) & 0xfu;
  }

 private:
  const int32_t* meta_;
  int64_t n_, groups_;
  bool packed_;
};

}  // namespace sparsed::format
