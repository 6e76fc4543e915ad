// `kpath info [MODEL]`: what a GGUF file holds. Prints the header, every
// metadata key (long arrays summarized as "[N x type] first items ..."), a
// table of tensors (name, type, shape as stored with ne[0] first, bytes) and
// totals per tensor type. Without MODEL it describes the embedded model.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "commands.h"
#include "text_format.h"

namespace kp::cli {
namespace {

using format::GgufArray;
using format::GgufFile;
using format::GgufTensorInfo;
using format::GgufValue;
using format::GgufValueType;

struct InfoOptions {
  std::string model;
  bool full = false;  // every array item and whole strings
};

constexpr size_t kShortArray = 8;     // arrays up to this length are printed whole
constexpr size_t kSummaryItems = 5;   // items shown of a longer array
constexpr size_t kMaxStringBytes = 120;

// Control characters escaped so that a value stays on its line.
std::string escape(std::string_view s, bool full) {
  std::string out;
  const size_t n = full ? s.size() : std::min(s.size(), kMaxStringBytes);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      default:
        if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
  }
  if (n < s.size()) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

std::string render(const GgufValue& v, bool full, bool quote_strings);

std::string render_array(const GgufArray& arr, bool full) {
  const bool whole = full || arr.elems.size() <= kShortArray;
  const size_t shown = whole ? arr.elems.size() : kSummaryItems;
  std::string items;
  for (size_t i = 0; i < shown; ++i) {
    if (i > 0) items += ", ";
    items += render(arr.elems[i], full, /*quote_strings=*/true);
  }
  if (whole) return "[" + items + "]";
  return fmt::format("[{} x {}] {}, ...", arr.elems.size(), format::value_type_name(arr.elem_type), items);
}

std::string render(const GgufValue& v, bool full, bool quote_strings) {
  switch (v.type) {
    case GgufValueType::UINT8: case GgufValueType::UINT16:
    case GgufValueType::UINT32: case GgufValueType::UINT64:
      return fmt::format("{}", std::get<uint64_t>(v.v));
    case GgufValueType::INT8: case GgufValueType::INT16:
    case GgufValueType::INT32: case GgufValueType::INT64:
      return fmt::format("{}", std::get<int64_t>(v.v));
    case GgufValueType::FLOAT32: return fmt::format("{}", static_cast<float>(std::get<double>(v.v)));
    case GgufValueType::FLOAT64: return fmt::format("{}", std::get<double>(v.v));
    case GgufValueType::BOOL: return std::get<bool>(v.v) ? "true" : "false";
    case GgufValueType::STRING: {
      const std::string s = escape(std::get<std::string>(v.v), full);
      return quote_strings ? "\"" + s + "\"" : s;
    }
    case GgufValueType::ARRAY: return render_array(*v.as_array(), full);
  }
  return "?";
}

// 1234567 -> "1,234,567"
std::string grouped(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string shape(const GgufTensorInfo& t) { return fmt::format("[{}]", fmt::join(t.dims, ", ")); }

void print_info(const GgufFile& f, const InfoOptions& opt) {
  fmt::print("file:     {} ({} bytes)\n", f.name(), grouped(f.file_size()));
  fmt::print("gguf:     version {}, alignment {}, data section at offset {} ({} bytes)\n", f.version(),
             f.alignment(), f.data_offset(), grouped(f.data_size()));

  fmt::print("\nmetadata ({} keys):\n", f.metadata().size());
  for (const auto& [key, value] : f.metadata()) {
    fmt::print("  {} = {}\n", key, render(value, opt.full, /*quote_strings=*/false));
  }

  const auto& tensors = f.tensors();
  fmt::print("\ntensors ({}; shape as stored, ne[0] first):\n", tensors.size());
  size_t name_w = 4, shape_w = 5;
  for (const GgufTensorInfo& t : tensors) {
    name_w = std::max(name_w, t.name.size());
    shape_w = std::max(shape_w, shape(t).size());
  }
  fmt::print("  {:<{}}  {:<7}  {:<{}}  {:>12}\n", "name", name_w, "type", "shape", shape_w, "bytes");
  struct TypeTotal { uint64_t tensors = 0, elements = 0, bytes = 0; };
  std::map<uint32_t, TypeTotal> by_type;  // ordered by GGUF type number
  uint64_t total_elements = 0, total_bytes = 0;
  for (const GgufTensorInfo& t : tensors) {
    fmt::print("  {:<{}}  {:<7}  {:<{}}  {:>12}\n", t.name, name_w, format::type_name(t.type), shape(t),
               shape_w, t.n_bytes);
    TypeTotal& tt = by_type[static_cast<uint32_t>(t.type)];
    ++tt.tensors;
    tt.elements += t.n_elements;
    tt.bytes += t.n_bytes;
    total_elements += t.n_elements;
    total_bytes += t.n_bytes;
  }

  fmt::print("\ntotals:   {} tensors, {} parameters, {} bytes ({})\n", tensors.size(), grouped(total_elements),
             grouped(total_bytes), human_bytes(total_bytes));
  for (const auto& [raw, tt] : by_type) {
    const auto type = static_cast<format::GgmlType>(raw);
    const double share = total_bytes == 0 ? 0.0 : 100.0 * static_cast<double>(tt.bytes) / static_cast<double>(total_bytes);
    const double bpw = static_cast<double>(tt.bytes) * 8.0 / static_cast<double>(tt.elements);
    fmt::print("  {:<7}  {:>4} tensors  {:>15} parameters  {:>15} bytes  {:5.1f}%  {:.2f} bits/weight\n",
               format::type_name(type), tt.tensors, grouped(tt.elements), grouped(tt.bytes), share, bpw);
  }
}

}  // namespace

void add_info_command(CLI::App& app, int* exit_code) {
  auto opt = std::make_shared<InfoOptions>();
  auto* sub = app.add_subcommand("info", "Print a GGUF file's metadata, tensors and totals");
  sub->add_option("model", opt->model, "GGUF file (default: the embedded model)");
  sub->add_flag("--full", opt->full, "Print every array item and whole strings");
  sub->callback([opt, exit_code] {
    const Result<format::GgufFile> f = open_model(opt->model);
    if (!f) {
      *exit_code = report_error(f.error());
      return;
    }
    print_info(*f, *opt);
    *exit_code = 0;
  });
}

}  // namespace kp::cli
