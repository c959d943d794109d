// Status helpers used across sparsed. Every public function returns
// absl::Status or absl::StatusOr<T>; codes map 1:1 onto gRPC codes.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SPARSED_CONCAT_INNER(a, b) a##b
#define SPARSED_CONCAT(a, b) SPARSED_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status _sparsed_status = (expr);           \
    if (!_sparsed_status.ok()) return _sparsed_status; \
  } while (0)

// `lhs = value of expr` where expr is an absl::StatusOr<T>; returns its status on error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(SPARSED_CONCAT(_sparsed_statusor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
