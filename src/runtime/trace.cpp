#include "runtime/trace.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"

namespace kp::runtime {

std::string trace_json(const std::vector<TraceEvent>& events, const std::string& device) {
  nlohmann::json out;
  nlohmann::json list = nlohmann::json::array();
  // One slice per submission (a prefill batch, or a decoded token with its
  // sampling) on a second track, labelled with its positions.
  auto batch_label = [](const TraceEvent& e) {
    return e.rows > 1 ? fmt::format("prefill {}..{}", e.pos0, e.pos0 + e.rows - 1) : fmt::format("token {}", e.pos0);
  };
  size_t first = 0;
  for (size_t i = 0; i <= events.size(); ++i) {
    const bool boundary = i == events.size() || events[i].pos0 != events[first].pos0 ||
                          events[i].rows != events[first].rows || (i > first && events[i].section == "preLayer");
    if (!boundary || i == first) continue;
    const TraceEvent& a = events[first];
    const TraceEvent& b = events[i - 1];
    list.push_back({{"name", batch_label(a)},
                    {"cat", a.rows > 1 ? "prefill" : "decode"},
                    {"ph", "X"},
                    {"ts", a.start_ms * 1000.0},
                    {"dur", std::max(0.0, (b.start_ms + b.ms - a.start_ms) * 1000.0)},
                    {"pid", 1},
                    {"tid", 0},
                    {"args", {{"pos0", a.pos0}, {"rows", a.rows}, {"dispatches", i - first}}}});
    first = i;
  }
  for (const auto& e : events) {
    nlohmann::json args = {{"kernel", e.kernel}, {"entry", e.entry}, {"section", e.section},
                           {"phase", e.rows > 1 ? "prefill" : "decode"}, {"pos0", e.pos0}, {"rows", e.rows}};
    if (e.layer >= 0) args["layer"] = e.layer;
    list.push_back({{"name", e.op},
                    {"cat", e.kernel},
                    {"ph", "X"},
                    {"ts", e.start_ms * 1000.0},
                    {"dur", e.ms * 1000.0},
                    {"pid", 1},
                    {"tid", 1},
                    {"args", args}});
  }
  list.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 1}, {"tid", 0}, {"args", {{"name", "batches"}}}});
  list.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 1}, {"tid", 1}, {"args", {{"name", "dispatches"}}}});
  out["traceEvents"] = list;
  out["displayTimeUnit"] = "ms";
  out["otherData"] = {{"device", device}, {"dispatches", events.size()}};
  return out.dump(1);
}

Status write_trace(const std::string& path, const std::vector<TraceEvent>& events, const std::string& device) {
  return write_file_atomic(path, trace_json(events, device));
}

std::string profile_table(const std::vector<TraceEvent>& events) {
  struct Row {
    std::string kernel;
    size_t calls = 0;
    double ms = 0;
  };
  std::map<std::string, Row> by_op;
  double total = 0;
  for (const auto& e : events) {
    Row& r = by_op[e.op];
    if (r.kernel.empty()) {
      r.kernel = e.kernel;
    } else if (r.kernel.find(e.kernel) == std::string::npos) {
      r.kernel += "," + e.kernel;
    }
    r.calls++;
    r.ms += e.ms;
    total += e.ms;
  }
  std::vector<std::pair<std::string, Row>> rows(by_op.begin(), by_op.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  std::string out = fmt::format("{:<16} {:<28} {:>7} {:>10} {:>9} {:>6}\n", "op", "kernel", "calls", "total ms",
                                "mean us", "share");
  for (const auto& [op, r] : rows) {
    out += fmt::format("{:<16} {:<28} {:>7} {:>10.3f} {:>9.1f} {:>5.1f}%\n", op, r.kernel, r.calls, r.ms,
                       r.calls ? r.ms * 1000.0 / static_cast<double>(r.calls) : 0.0,
                       total > 0 ? 100.0 * r.ms / total : 0.0);
  }
  out += fmt::format("{:<16} {:<28} {:>7} {:>10.3f}\n", "total", "", events.size(), total);
  return out;
}

}  // namespace kp::runtime
