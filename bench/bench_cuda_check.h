// Error handling for the GPU benchmark programs: a failed CUDA, cuSPARSE or
// cuBLAS call ends the run with its location, the call and the library's
// message (a benchmark has nothing to recover). Include only the library
// headers a program uses before this one: each macro needs its own.
#pragma once

#include <cstdio>
#include <cstdlib>

#define CHECK_CUDA(expr)                                                                          \
  do {                                                                                            \
    cudaError_t _e = (expr);                                                                      \
    if (_e != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(_e)); \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)
#define CHECK_CUSPARSE(expr)                                             \
  do {                                                                   \
    cusparseStatus_t _e = (expr);                                        \
    if (_e != CUSPARSE_STATUS_SUCCESS) {                                 \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, \
                   cusparseGetErrorString(_e));                          \
      std::exit(1);                                                      \
    }                                                                    \
  } while (0)
#define CHECK_CUBLAS(expr)                                               \
  do {                                                                   \
    cublasStatus_t _e = (expr);                                          \
    if (_e != CUBLAS_STATUS_SUCCESS) {                                   \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, \
                   cublasGetStatusString(_e));                           \
      std::exit(1);                                                      \
    }                                                                    \
  } while (0)
