// Shared pieces of the libFuzzer targets: structure-aware tensor generation
// from fuzz bytes and the invariants every valid tensor must satisfy.
// A violated invariant aborts (libFuzzer reports it as a crash).
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sparsed/tensor.h"

namespace sparsed::fuzz {

// Aborts with a message on stderr when `ok` is false.
void Require(bool ok, const std::string& what);

// Tensors larger than this are skipped (a fuzzer must not run out of memory
// on a description that is valid but huge).
inline constexpr int64_t kMaxFuzzBytes = 1 << 20;

// True when the dense form of `d` stays under kMaxFuzzBytes (the invariants
// compare dense matrices; a huge, nearly empty sparse shape is skipped).
bool DenseFits(const TensorDesc& d);

// A description of format `f` with small extents most of the time and
// arbitrary (often invalid) fields otherwise.
TensorDesc FuzzDesc(FuzzedDataProvider& in, Format f);

// Fills every component of `t` from fuzz bytes: pointer arrays as running sums
// of small steps, index arrays near their valid range, values drawn from a set
// that includes 0, -0, NaN, Inf and subnormals; or raw bytes.
void FuzzFill(FuzzedDataProvider& in, Tensor& t);

// Checks what every valid host tensor must satisfy: conversion to each format
// (where the target can hold it) gives a valid tensor with the same dense
// matrix, transposition matches the dense transpose, Inspect and Spy agree
// with the dense matrix.
void CheckValidTensorInvariants(const Tensor& t);

// The dense row-major matrix of a valid tensor as raw element bits through
// Convert(t, dense); 16-bit values shifted to the high half, so that bit 31
// is the sign for every dtype.
std::vector<uint32_t> DenseBits(const Tensor& t);

}  // namespace sparsed::fuzz

namespace sparsed::fuzz {
// A tensor of format f: mostly structurally plausible (and sometimes one byte
// corrupted), sometimes an arbitrary description with raw bytes. Nothing when
// the description is refused or too large.
std::optional<Tensor> FuzzTensor(FuzzedDataProvider& in, Format f);
}  // namespace sparsed::fuzz
