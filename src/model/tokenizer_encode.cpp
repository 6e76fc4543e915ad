// Tokenizer::encode: SentencePiece BPE over a linked list of symbols with a
// priority queue of candidate merges, O(n log n) in the text length n.
//
// Each symbol is a byte range [start, start + len) of the normalized text
// (spaces -> "▁"); merging two neighbours only grows the left one's range, so
// a symbol never needs its own copy of its bytes. Candidate merges are pushed
// when two symbols become neighbours and checked for staleness when popped
// (a symbol that took part in another merge since has a different length, or
// is gone).
//
// As the text is read it is cut where no merge can ever join two neighbouring
// characters (around a user-defined piece, and between two characters that
// occur next to each other in no piece: CharPairSet). Merges on the two sides
// of such a cut never interact, so each part runs with its own small queue and
// symbol list; the result is the same as one queue over the whole text, and
// both stay in cache (for English text a part is about a word). Parts that
// repeat within one call are encoded once (PartCache).
#include <algorithm>
#include <cstring>
#include <limits>
#include <queue>

#include "core/check.h"
#include "model/tokenizer.h"
#include "model/tokenizer_index.h"

namespace kp::model {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // "▁"

// A symbol of the linked list. `id`: the piece id once known (user-defined
// matches and merge results), kIdUnknown for initial characters (looked up at
// the end, since most of them are merged away).
struct Symbol {
  int32_t prev;    // -1 at the start of its part
  int32_t next;    // -1 at the end of its part
  uint32_t start;  // into the normalized text
  uint32_t len;    // 0: merged into its left neighbour
  int32_t id;
};
constexpr int32_t kIdUnknown = -2;

// A candidate merge of symbols `left` and `left`'s right neighbour `right`.
struct Candidate {
  float score;
  int32_t left;
  int32_t right;
  uint32_t len;  // left.len + right.len when pushed; differs later if stale
  int32_t id;    // the piece the pair forms
};

// Tokens of the parts already encoded by this call, keyed by the part's bytes.
// A part's tokens depend on its bytes alone, and in natural text most parts
// (about one word each) repeat, so a repeat is copied instead of merged again.
// A value is a range of the output vector. Open addressing; grows at half full.
class PartCache {
 public:
  static constexpr uint32_t kInline = 24;  // parts this long keep their bytes in the entry
  struct Entry {
    uint64_t hash = 0;
    uint32_t start = 0;  // the part's bytes: text[start, start + len)
    uint32_t len = 0;    // 0: empty slot (parts are never empty)
    uint32_t out_begin = 0;
    uint32_t out_len = 0;
    char bytes[kInline];  // the first min(len, kInline) bytes; compared without touching the text
  };

  explicit PartCache(std::string_view text) : text_(text), slots_(256), mask_(255) {}

  // The entry of the part text[start, start + len), or nullptr.
  const Entry* find(uint32_t start, uint32_t len, uint64_t hash) const {
    const std::string_view key = text_.substr(start, len);
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Entry& e = slots_[i];
      if (e.len == 0) return nullptr;
      if (e.hash == hash && e.len == len && same_bytes(e, key)) return &e;
    }
  }

  // Adds a part that find() did not return.
  void insert(Entry entry) {
    std::memcpy(entry.bytes, text_.data() + entry.start, std::min(entry.len, kInline));
    if (2 * (n_ + 1) > slots_.size()) {
      std::vector<Entry> old = std::move(slots_);
      slots_.assign(old.size() * 2, Entry{});
      mask_ = slots_.size() - 1;
      for (const Entry& e : old) {
        if (e.len != 0) place(e);
      }
    }
    place(entry);
    ++n_;
  }

 private:
  bool same_bytes(const Entry& e, std::string_view key) const {
    if (e.len <= kInline) return std::memcmp(e.bytes, key.data(), e.len) == 0;
    return text_.substr(e.start, e.len) == key;
  }
  void place(const Entry& e) {
    size_t i = e.hash & mask_;
    while (slots_[i].len != 0) i = (i + 1) & mask_;
    slots_[i] = e;
  }
  std::string_view text_;
  std::vector<Entry> slots_;
  size_t mask_;
  size_t n_ = 0;
};

// Highest score first; among equal scores the leftmost pair.
struct CandidateOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.score != b.score) return a.score < b.score;
    return a.left > b.left;
  }
};

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos) out.push_back(bos_);
  if (text.empty()) return out;

  // Normalize: "▁" for every space, and one in front with add_space_prefix.
  std::string norm;
  norm.reserve(text.size() + text.size() / 2 + kSpaceSymbol.size());
  if (add_space_prefix_) norm.append(kSpaceSymbol);
  for (const char c : text) {
    if (c == ' ') norm.append(kSpaceSymbol);
    else norm.push_back(c);
  }
  KP_CHECK(norm.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
           "text to encode is shorter than 2 GiB");
  const std::string_view nv(norm);
  const Index& ix = *index_;
  out.reserve(out.size() + norm.size() / 4 + 16);

  // The unit of the initial cut at `pos`: a user-defined piece (longest
  // match; `id` is its id) or one UTF-8 character (`id` is kIdUnknown).
  struct Unit {
    uint32_t len;
    int32_t id;
    uint32_t packed;  // pack_char of a character
  };
  const auto unit_at = [&](size_t pos) -> Unit {
    if (!ix.user_defined.empty()) {
      size_t len = 0;
      const int32_t id = ix.user_defined.longest_match(nv.substr(pos), &len);
      if (id >= 0) return Unit{static_cast<uint32_t>(len), id, 0};
    }
    const size_t len = utf8_char_len(nv.substr(pos));
    return Unit{static_cast<uint32_t>(len), kIdUnknown, pack_char(nv.substr(pos, len))};
  };

  // Emits a final symbol: its piece, or one byte piece per byte (the unknown
  // token for a byte without a piece).
  const auto emit = [&](const Symbol& s) {
    int32_t id = s.id;
    if (id == kIdUnknown) id = ix.mergeable.find(nv.substr(s.start, s.len));
    if (id >= 0) {
      out.push_back(id);
      return;
    }
    for (uint32_t k = 0; k < s.len; ++k) {
      const int32_t b = ix.byte_id[static_cast<uint8_t>(nv[s.start + k])];
      out.push_back(b >= 0 ? b : unk_);
    }
  };

  std::vector<Symbol> sym;  // the current part; indices are local to it
  std::vector<Candidate> storage;
  storage.reserve(64);
  std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> agenda(CandidateOrder{},
                                                                               std::move(storage));
  // Queues the merge of `left` and `right` if their bytes form a piece.
  const auto try_pair = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = sym[static_cast<size_t>(left)];
    const std::string_view bytes = nv.substr(l.start, l.len + sym[static_cast<size_t>(right)].len);
    const int32_t id = ix.mergeable.find(bytes);
    if (id < 0) return;
    agenda.push(Candidate{scores_[static_cast<size_t>(id)], left, right, static_cast<uint32_t>(bytes.size()), id});
  };

  PartCache cache(nv);
  size_t pos = 0;
  Unit next = unit_at(0);
  while (pos < norm.size()) {
    // Gather one part: units while each joins the next (a character pair that
    // occurs in some piece). A user-defined piece is a part of its own.
    sym.clear();
    const size_t part_start = pos;
    for (;;) {
      const Unit u = next;
      const auto n = static_cast<int32_t>(sym.size());
      sym.push_back(Symbol{n - 1, n + 1, static_cast<uint32_t>(pos), u.len, u.id});
      pos += u.len;
      if (pos == norm.size()) break;
      next = unit_at(pos);
      if (u.id != kIdUnknown || next.id != kIdUnknown ||
          !ix.joinable.contains(uint64_t{u.packed} << 32 | next.packed)) {
        break;
      }
    }
    sym.back().next = -1;
    if (sym.size() == 1) {
      emit(sym[0]);
      continue;
    }

    PartCache::Entry entry;
    entry.start = static_cast<uint32_t>(part_start);
    entry.len = static_cast<uint32_t>(pos - part_start);
    entry.hash = piece_hash(nv.substr(part_start, pos - part_start));
    if (const PartCache::Entry* seen = cache.find(entry.start, entry.len, entry.hash)) {
      // By index: push_back may reallocate `out`.
      for (uint32_t k = 0; k < seen->out_len; ++k) out.push_back(out[seen->out_begin + k]);
      continue;
    }
    entry.out_begin = static_cast<uint32_t>(out.size());

    const auto last = static_cast<int32_t>(sym.size()) - 1;
    for (int32_t i = 0; i < last; ++i) try_pair(i, i + 1);
    while (!agenda.empty()) {
      const Candidate c = agenda.top();
      agenda.pop();
      Symbol& l = sym[static_cast<size_t>(c.left)];
      Symbol& r = sym[static_cast<size_t>(c.right)];
      // Stale: one side was merged away, or grew by another merge.
      if (l.len == 0 || r.len == 0 || l.len + r.len != c.len) continue;
      l.len += r.len;
      l.id = c.id;
      l.next = r.next;
      if (r.next >= 0) sym[static_cast<size_t>(r.next)].prev = c.left;
      r.len = 0;
      try_pair(l.prev, c.left);
      try_pair(c.left, l.next);
    }

    // The first symbol always survives (a merge keeps the left symbol).
    for (int32_t i = 0; i >= 0; i = sym[static_cast<size_t>(i)].next) emit(sym[static_cast<size_t>(i)]);
    entry.out_len = static_cast<uint32_t>(out.size()) - entry.out_begin;
    cache.insert(entry);
  }
  return out;
}

}  // namespace kp::model
