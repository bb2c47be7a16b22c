// Internal to container/env_script.cpp: the tokenizer and the permissive parser of the sh
// subset (an AST of simple commands, if clauses, and/or lists and pipelines). Parsing never
// judges support: constructs rbox cannot run still parse, so branches that are never taken do
// not matter. Throws sh::Unsupported only for text it cannot even tokenize or balance.
#pragma once

#include <cctype>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rbox::container::sh {

struct Unsupported {
  std::string why;
};

enum class Tok { kWord, kNewline, kSemi, kAnd, kOr, kPipe, kAmp, kLParen, kRParen, kRedir, kEnd };

struct Token {
  Tok kind;
  std::string text;  // raw word text, quotes included
  int line;
};

inline bool name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
inline bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

struct Cmd;
struct Pipeline {
  std::vector<Cmd> cmds;
};
struct AndOr {
  std::vector<Pipeline> parts;
  std::vector<Tok> ops;  // kAnd / kOr between parts
  bool background = false;
};
using List = std::vector<AndOr>;

struct IfClause {
  std::vector<std::pair<List, List>> branches;  // condition, body
  std::unique_ptr<List> otherwise;
};

struct Cmd {
  enum Kind { kSimple, kIf, kOpaque } kind = kSimple;
  std::vector<std::string> words;
  bool redirected = false;
  int line = 0;
  std::shared_ptr<IfClause> if_clause;
  std::string what;  // for opaque constructs
};

std::vector<Token> tokenize(std::string_view text);
// The whole script as a list of and/or lists.
List parse(std::vector<Token> tokens);

}  // namespace rbox::container::sh
