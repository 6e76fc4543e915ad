// Invariant checks: a broken invariant is a bug, so it aborts with file:line.
// Untrusted input never reaches these; it is rejected with a kp::Error.
#pragma once

#include <cstdio>
#include <cstdlib>

#define KP_CHECK(cond, msg)                                                   \
  do {                                                                        \
    if (!(cond)) {                                                            \
      std::fprintf(stderr, "%s:%d: check failed: %s: %s\n", __FILE__, __LINE__, \
                   #cond, msg);                                               \
      std::abort();                                                           \
    }                                                                         \
  } while (0)
