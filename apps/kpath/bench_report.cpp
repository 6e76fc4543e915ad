#include "bench_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace kp::cli {
namespace {

std::string mib(uint64_t bytes) { return fmt::format("{:.2f} MiB", static_cast<double>(bytes) / (1 << 20)); }
std::string gbs(double bytes_per_s) { return fmt::format("{:.2f}", bytes_per_s / 1e9); }

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

nlohmann::ordered_json spread_json(const runtime::Spread& s) {
  return {{"median", s.median}, {"mean", s.mean}, {"stddev", s.stddev},
          {"min", s.min},       {"max", s.max},   {"samples", s.samples}};
}

// Three-significant-digit label for a bar's value.
std::string short_number(double v) {
  if (v >= 100) return fmt::format("{:.0f}", v);
  if (v >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2f}", v);
}

struct Bar {
  double value = 0, lo = 0, hi = 0;  // median and whiskers
  bool present = false;
};

// One panel of horizontal bars, one row per path.
void panel(std::string& svg, double x, double y0, double width, const std::string& title, const std::string& color,
           const std::vector<Bar>& bars, const std::string& unit) {
  constexpr double kRow = 28, kBar = 16;
  svg += fmt::format(R"(<text x="{}" y="{}" font-size="13" font-weight="bold">{}</text>)"
                     "\n",
                     x, y0 - 10, xml_escape(title));
  double top = 0;
  for (const Bar& b : bars) top = std::max({top, b.value, b.hi});
  const double scale = top > 0 ? (width - 70) / top : 0;
  const double height = kRow * static_cast<double>(bars.size());
  svg += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#888"/>)"
                     "\n",
                     x, y0, y0 + height);
  for (size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    const double y = y0 + kRow * static_cast<double>(i) + (kRow - kBar) / 2;
    if (!b.present) {
      svg += fmt::format(R"(<text x="{}" y="{}" font-size="12" fill="#888">not measured</text>)"
                         "\n",
                         x + 6, y + 12);
      continue;
    }
    const double w = std::max(1.0, b.value * scale);
    svg += fmt::format(R"(<rect x="{}" y="{}" width="{:.1f}" height="{}" fill="{}"/>)"
                       "\n",
                       x, y, w, kBar, color);
    if (b.hi > b.lo) {
      const double mid = y + kBar / 2;
      const double x1 = x + b.lo * scale, x2 = x + b.hi * scale;
      svg += fmt::format(R"(<path d="M{0:.1f} {1:.1f}H{2:.1f}M{0:.1f} {3:.1f}V{4:.1f}M{2:.1f} {3:.1f}V{4:.1f}" )"
                         R"(stroke="#222" fill="none"/>)"
                         "\n",
                         x1, mid, x2, mid - 4, mid + 4);
    }
    svg += fmt::format(R"(<text x="{:.1f}" y="{}" font-size="12">{}{}</text>)"
                       "\n",
                       x + std::max(w, b.hi * scale) + 5, y + 12, short_number(b.value), unit);
  }
}

}  // namespace

double BenchRun::prefill_dispatches_per_token(const Path& p) const {
  if (n_prompt == 0) return 0;
  const uint32_t b = std::max<uint32_t>(1, batch);
  const uint32_t batches = (n_prompt + b - 1) / b;
  return static_cast<double>(batches * p.bench.prefill_dispatches) / n_prompt;
}

std::string bench_markdown(const BenchRun& run) {
  std::string out = fmt::format("kpath bench: {} on {} ({}, {}), {}\n\n", run.model, run.device, run.backend,
                                run.driver, run.date);
  out += fmt::format("- command: `{}`\n", run.command);
  out += fmt::format("- copy bandwidth: {}\n",
                     run.copy_bandwidth > 0 ? fmt::format("{} GB/s ({})", gbs(run.copy_bandwidth), run.bandwidth_note)
                                            : "not measured (" + run.bandwidth_note + ")");
  out += fmt::format("- pp{0}: {0} prompt tokens in batches of {1}; tg{2}: {2} tokens decoded greedily after the "
                     "prompt; {3} repetitions after a warm-up, t/s as median ± standard deviation\n\n",
                     run.n_prompt, run.batch, run.n_gen, run.reps);
  out += "| path | backend | test | t/s | dispatches/token | weights/token | GB/s | % of copy bw | peak memory |\n";
  out += "|---|---|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& p : run.paths) {
    const auto& b = p.bench;
    if (run.n_prompt > 0) {
      out += fmt::format("| {} | {} | pp{} | {:.2f} ± {:.2f} | {:.2f} | | | | {} |\n", md_cell(p.id), run.backend,
                         run.n_prompt, b.prefill.median, b.prefill.stddev, run.prefill_dispatches_per_token(p),
                         mib(p.peak_memory));
    }
    if (run.n_gen > 0) {
      const double bw = BenchRun::decode_bandwidth(p);
      const std::string share = run.copy_bandwidth > 0 ? fmt::format("{:.1f} %", 100 * bw / run.copy_bandwidth) : "";
      out += fmt::format("| {} | {} | tg{} | {:.2f} ± {:.2f} | {} | {} | {} | {} | {} |\n", md_cell(p.id),
                         run.backend, run.n_gen, b.decode.median, b.decode.stddev, b.decode_dispatches,
                         mib(b.decode_weight_bytes), gbs(bw), share, mib(p.peak_memory));
    }
  }
  for (const auto& p : run.paths) {
    if (p.ops.empty()) continue;
    out += fmt::format("\nDecode steps of {} (--ops): device time of each dispatch, timed alone, over {} tokens "
                       "decoded after the prompt; GB/s is the step's weight bytes over its time{}\n\n",
                       md_cell(p.id), run.ops_tokens,
                       run.copy_bandwidth > 0 ? ", against the copy bandwidth" : "");
    out += "| op | kernel | calls/token | us/call | us/token | share | weights/call | GB/s | % of copy bw |\n";
    out += "|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
    double total_ms = 0;
    for (const auto& r : p.ops) total_ms += r.ms;
    const double tokens = std::max<uint32_t>(1, run.ops_tokens);
    for (const auto& r : p.ops) {
      const double calls = static_cast<double>(std::max<size_t>(1, r.calls));
      const double bw = r.ms > 0 ? static_cast<double>(r.weight_bytes) / (r.ms * 1e-3) : 0;
      const bool weights = r.weight_bytes > 0;
      out += fmt::format("| {} | {} | {:.0f} | {:.2f} | {:.1f} | {:.1f} % | {} | {} | {} |\n", md_cell(r.op),
                         md_cell(r.kernel), static_cast<double>(r.calls) / tokens, 1e3 * r.ms / calls,
                         1e3 * r.ms / tokens, total_ms > 0 ? 100 * r.ms / total_ms : 0.0,
                         weights ? mib(static_cast<uint64_t>(static_cast<double>(r.weight_bytes) / calls)) : "",
                         weights ? gbs(bw) : "",
                         weights && run.copy_bandwidth > 0 ? fmt::format("{:.1f} %", 100 * bw / run.copy_bandwidth)
                                                           : "");
    }
    out += fmt::format("| total | | | | {:.1f} | | | | |\n", 1e3 * total_ms / tokens);
  }
  return out;
}

nlohmann::ordered_json bench_json(const BenchRun& run) {
  nlohmann::ordered_json paths = nlohmann::ordered_json::array();
  for (const auto& p : run.paths) {
    const auto& b = p.bench;
    const double bw = BenchRun::decode_bandwidth(p);
    nlohmann::ordered_json j = {
        {"path", p.id},
        {"path_source", p.source},
        {"prefill_tokens_per_s", spread_json(b.prefill)},
        {"decode_tokens_per_s", spread_json(b.decode)},
        {"dispatches_per_decode_token", b.decode_dispatches},
        {"dispatches_per_prefill_batch", b.prefill_dispatches},
        {"dispatches_per_prefill_token", run.prefill_dispatches_per_token(p)},
        {"weight_bytes_per_decode_token", b.decode_weight_bytes},
        {"weight_bytes_on_device", b.device_weight_bytes},
        {"decode_bandwidth_bytes_per_s", bw},
        {"decode_bandwidth_fraction_of_copy",
         run.copy_bandwidth > 0 ? nlohmann::ordered_json(bw / run.copy_bandwidth) : nlohmann::ordered_json(nullptr)},
        {"peak_memory_bytes", p.peak_memory}};
    if (!p.ops.empty()) {
      nlohmann::ordered_json ops = nlohmann::ordered_json::array();
      for (const auto& r : p.ops) {
        ops.push_back({{"op", r.op}, {"kernel", r.kernel}, {"calls", r.calls}, {"device_ms", r.ms},
                       {"weight_bytes", r.weight_bytes}});
      }
      j["decode_ops"] = {{"tokens", run.ops_tokens}, {"steps", std::move(ops)}};
    }
    paths.push_back(std::move(j));
  }
  return {{"model", run.model},
          {"date", run.date},
          {"command", run.command},
          {"backend", run.backend},
          {"device", run.device},
          {"driver", run.driver},
          {"copy_bandwidth_bytes_per_s",
           run.copy_bandwidth > 0 ? nlohmann::ordered_json(run.copy_bandwidth) : nlohmann::ordered_json(nullptr)},
          {"copy_bandwidth_note", run.bandwidth_note},
          {"n_prompt", run.n_prompt},
          {"n_gen", run.n_gen},
          {"repetitions", run.reps},
          {"batch", run.batch},
          {"paths", std::move(paths)}};
}

std::string bench_svg(const BenchRun& run) {
  constexpr double kLabel = 230, kPanel = 250, kGap = 30, kRow = 28, kTop = 84;
  const double width = kLabel + 3 * kPanel + 2 * kGap + 60;
  const double height = kTop + kRow * static_cast<double>(run.paths.size()) + 30;
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" )"
      R"(font-family="Helvetica, Arial, sans-serif">)"
      "\n"
      R"(<rect width="100%" height="100%" fill="white"/>)"
      "\n",
      width, height);
  svg += fmt::format(R"(<text x="10" y="26" font-size="16" font-weight="bold">kpath bench: {} on {} ({})</text>)"
                     "\n",
                     xml_escape(run.model), xml_escape(run.device), xml_escape(run.backend));
  const std::string bw =
      run.copy_bandwidth > 0 ? fmt::format("measured copy bandwidth {} GB/s", gbs(run.copy_bandwidth)) : "copy bandwidth not measured";
  svg += fmt::format(R"(<text x="10" y="46" font-size="12" fill="#555">{} · pp{} / tg{} · median of {} runs, )"
                     R"(whiskers min to max · {}</text>)"
                     "\n",
                     xml_escape(run.date), run.n_prompt, run.n_gen, run.reps, bw);
  for (size_t i = 0; i < run.paths.size(); ++i) {
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="12" text-anchor="end">{}</text>)"
                       "\n",
                       kLabel - 10, kTop + kRow * static_cast<double>(i) + kRow / 2 + 4, xml_escape(run.paths[i].id));
  }
  std::vector<Bar> decode, prefill, share;
  for (const auto& p : run.paths) {
    const auto& b = p.bench;
    decode.push_back(Bar{b.decode.median, b.decode.min, b.decode.max, !b.decode.samples.empty()});
    prefill.push_back(Bar{b.prefill.median, b.prefill.min, b.prefill.max, !b.prefill.samples.empty()});
    const double scale = run.copy_bandwidth > 0 ? 100 / run.copy_bandwidth : 1e-9;
    const double bytes = static_cast<double>(b.decode_weight_bytes);
    share.push_back(Bar{bytes * b.decode.median * scale, bytes * b.decode.min * scale, bytes * b.decode.max * scale,
                        !b.decode.samples.empty()});
  }
  panel(svg, kLabel, kTop, kPanel, fmt::format("decode tg{}, tokens/s", run.n_gen), "#4e79a7", decode, "");
  panel(svg, kLabel + kPanel + kGap, kTop, kPanel, fmt::format("prefill pp{}, tokens/s", run.n_prompt), "#f28e2b",
        prefill, "");
  panel(svg, kLabel + 2 * (kPanel + kGap), kTop, kPanel,
        run.copy_bandwidth > 0 ? "decode weight reads, % of copy bw" : "decode weight reads, GB/s", "#59a14f", share,
        run.copy_bandwidth > 0 ? " %" : "");
  svg += "</svg>\n";
  return svg;
}

}  // namespace kp::cli
