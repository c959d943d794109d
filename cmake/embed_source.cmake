# Writes OUT, a C++ file defining `std::string_view NAME()` that returns the
# text of IN (a kernel source template compiled at run time by NVRTC).
file(READ ${IN} text)
string(FIND "${text}" ")sparsed_src\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter")
endif()
file(WRITE ${OUT} "// Generated from ${IN}; do not edit.\n#include <string_view>\n"
     "namespace sparsed::cuda {\nstd::string_view ${NAME}() {\n"
     "  static constexpr char kText[] = R\"sparsed_src(${text})sparsed_src\";\n"
     "  return {kText, sizeof kText - 1};\n}\n}  // namespace sparsed::cuda\n")
