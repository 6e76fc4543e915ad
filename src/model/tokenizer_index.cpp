// Lookup tables behind Tokenizer: PieceMap, CharPairSet, UserPieceTrie.
#include <algorithm>
#include <limits>

#include "core/check.h"
#include "model/tokenizer_index.h"

namespace kp::model {

// ---- PieceMap ----------------------------------------------------------------

void PieceMap::reserve(size_t n_keys) {
  KP_CHECK(n_keys_ == 0, "PieceMap::reserve before any insert");
  size_t cap = 16;
  while (cap < 2 * n_keys + 1) cap *= 2;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
}

void PieceMap::insert(std::string_view key, int32_t id) {
  KP_CHECK(id >= 0, "piece ids are non-negative");
  if (2 * (n_keys_ + 1) > slots_.size()) {
    // Grow: rehash the stored keys into a table twice as large.
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(16, old.size() * 2), Slot{});
    mask_ = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.id < 0) continue;
      size_t i = piece_hash(std::string_view(key_of(s), s.len)) & mask_;
      while (slots_[i].id >= 0) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }
  const uint64_t h = piece_hash(key);
  const auto tag = static_cast<uint32_t>(h >> 32);
  size_t i = h & mask_;
  for (; slots_[i].id >= 0; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.tag == tag && s.len == key.size() && std::memcmp(key_of(s), key.data(), key.size()) == 0) {
      return;  // first id wins
    }
  }
  KP_CHECK(arena_.size() + key.size() <= std::numeric_limits<uint32_t>::max(),
           "piece bytes fit 32-bit offsets (from_vocab bounds their total)");
  Slot& slot = slots_[i];
  slot.tag = tag;
  slot.id = id;
  slot.len = static_cast<uint32_t>(key.size());
  if (key.size() <= kInline) {
    std::memcpy(slot.bytes, key.data(), key.size());
  } else {
    slot.offset = static_cast<uint32_t>(arena_.size());
    arena_.append(key);
  }
  ++n_keys_;
}

// ---- UserPieceTrie -------------------------------------------------------------

int32_t UserPieceTrie::child(int32_t node, uint8_t byte) const {
  const auto& c = nodes_[static_cast<size_t>(node)].children;
  const auto it = std::lower_bound(c.begin(), c.end(), byte,
                                   [](const std::pair<uint8_t, int32_t>& e, uint8_t b) { return e.first < b; });
  return (it != c.end() && it->first == byte) ? it->second : -1;
}

void UserPieceTrie::insert(std::string_view piece, int32_t id) {
  KP_CHECK(!piece.empty(), "user-defined pieces are non-empty");
  const auto first = static_cast<uint8_t>(piece[0]);
  if (root_[first] < 0) {
    root_[first] = static_cast<int32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  int32_t node = root_[first];
  for (size_t k = 1; k < piece.size(); ++k) {
    const auto b = static_cast<uint8_t>(piece[k]);
    int32_t next = child(node, b);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_.emplace_back();  // may reallocate: look the parent up again below
      auto& c = nodes_[static_cast<size_t>(node)].children;
      const auto it = std::lower_bound(
          c.begin(), c.end(), b, [](const std::pair<uint8_t, int32_t>& e, uint8_t x) { return e.first < x; });
      c.insert(it, {b, next});
    }
    node = next;
  }
  if (nodes_[static_cast<size_t>(node)].id < 0) nodes_[static_cast<size_t>(node)].id = id;
}

int32_t UserPieceTrie::longest_match(std::string_view text, size_t* len) const {
  if (text.empty()) return -1;
  int32_t node = root_[static_cast<uint8_t>(text[0])];
  int32_t best = -1;
  size_t k = 1;
  while (node >= 0) {
    const int32_t id = nodes_[static_cast<size_t>(node)].id;
    if (id >= 0) {
      best = id;
      *len = k;
    }
    if (k == text.size()) break;
    node = child(node, static_cast<uint8_t>(text[k]));
    ++k;
  }
  return best;
}

// ---- CharPairSet -----------------------------------------------------------------

void CharPairSet::insert(uint64_t key) {
  KP_CHECK(key != kEmpty, "a packed character pair is never all ones");
  if (2 * (n_keys_ + 1) > slots_.size()) {
    std::vector<uint64_t> old = std::move(slots_);
    slots_.assign(old.size() * 2, kEmpty);
    mask_ = slots_.size() - 1;
    for (const uint64_t k : old) {
      if (k == kEmpty) continue;
      size_t i = mix(k) & mask_;
      while (slots_[i] != kEmpty) i = (i + 1) & mask_;
      slots_[i] = k;
    }
  }
  size_t i = mix(key) & mask_;
  for (; slots_[i] != kEmpty; i = (i + 1) & mask_) {
    if (slots_[i] == key) return;
  }
  slots_[i] = key;
  ++n_keys_;
}

void CharPairSet::insert_pairs_of(std::string_view piece) {
  // Cut as the text is cut: a piece can only be formed from whole characters
  // of the text, and for those the two cuts agree.
  size_t pos = 0;
  uint32_t prev = 0;
  bool have_prev = false;
  while (pos < piece.size()) {
    const size_t len = utf8_char_len(piece.substr(pos));
    const uint32_t cur = pack_char(piece.substr(pos, len));
    if (have_prev) insert(uint64_t{prev} << 32 | cur);
    prev = cur;
    have_prev = true;
    pos += len;
  }
}

}  // namespace kp::model
