// Implementation of container/env_script_parse.hpp.
#include "container/env_script_parse.hpp"

#include <set>

namespace rbox::container::sh {

namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  List parse_all() {
    List l = parse_list({});
    if (peek().kind != Tok::kEnd) fail("unexpected '" + peek().text + "'");
    return l;
  }

 private:
  std::vector<Token> t_;
  size_t p_ = 0;

  const Token& peek(size_t ahead = 0) const { return t_[std::min(p_ + ahead, t_.size() - 1)]; }
  Token next() { return t_[p_ < t_.size() - 1 ? p_++ : p_]; }
  [[noreturn]] void fail(const std::string& why) const {
    throw Unsupported{"line " + std::to_string(peek().line) + ": " + why};
  }
  bool at_word(std::string_view w) const { return peek().kind == Tok::kWord && peek().text == w; }
  void skip_newlines() {
    while (peek().kind == Tok::kNewline) next();
  }

  List parse_list(const std::set<std::string>& stops) {
    List l;
    for (;;) {
      while (peek().kind == Tok::kNewline || peek().kind == Tok::kSemi) next();
      if (peek().kind == Tok::kEnd || peek().kind == Tok::kRParen) return l;
      if (peek().kind == Tok::kWord && stops.count(peek().text)) return l;
      l.push_back(parse_and_or());
      if (peek().kind == Tok::kAmp) {
        next();
        l.back().background = true;
      }
    }
  }

  AndOr parse_and_or() {
    AndOr a;
    a.parts.push_back(parse_pipeline());
    while (peek().kind == Tok::kAnd || peek().kind == Tok::kOr) {
      a.ops.push_back(next().kind);
      skip_newlines();
      a.parts.push_back(parse_pipeline());
    }
    return a;
  }

  Pipeline parse_pipeline() {
    Pipeline p;
    if (at_word("!")) fail("'!' pipelines are not supported");
    p.cmds.push_back(parse_command());
    while (peek().kind == Tok::kPipe) {
      next();
      skip_newlines();
      p.cmds.push_back(parse_command());
    }
    return p;
  }

  Cmd opaque(const std::string& what, int line) {
    Cmd c;
    c.kind = Cmd::kOpaque;
    c.what = what;
    c.line = line;
    return c;
  }

  // Skips a compound command up to its matching closer, counting nesting.
  void skip_balanced(std::string_view open, std::string_view close) {
    int depth = 1;
    while (depth > 0) {
      const Token& tk = peek();
      if (tk.kind == Tok::kEnd) fail("missing '" + std::string(close) + "'");
      if (tk.kind == Tok::kWord && tk.text == open) ++depth;
      if (tk.kind == Tok::kWord && tk.text == close) --depth;
      next();
    }
  }

  Cmd parse_command() {
    const Token& tk = peek();
    int line = tk.line;
    if (tk.kind == Tok::kLParen) {
      next();
      int depth = 1;
      while (depth > 0) {
        if (peek().kind == Tok::kEnd) fail("missing ')'");
        if (peek().kind == Tok::kLParen) ++depth;
        if (peek().kind == Tok::kRParen) --depth;
        next();
      }
      return opaque("subshell", line);
    }
    if (tk.kind != Tok::kWord) fail("unexpected '" + tk.text + "'");
    if (tk.text == "if") return parse_if();
    if (tk.text == "case") {
      next();
      skip_balanced("case", "esac");
      return opaque("case", line);
    }
    if (tk.text == "for" || tk.text == "while" || tk.text == "until" || tk.text == "select") {
      std::string what = tk.text;
      while (!at_word("do")) {
        if (peek().kind == Tok::kEnd) fail("missing 'do'");
        next();
      }
      next();
      skip_balanced("do", "done");
      return opaque(what, line);
    }
    if (tk.text == "{") {
      next();
      skip_balanced("{", "}");
      return opaque("{ }", line);
    }
    if (tk.text == "then" || tk.text == "fi" || tk.text == "elif" || tk.text == "else" || tk.text == "do" ||
        tk.text == "done" || tk.text == "esac" || tk.text == "}")
      fail("unexpected '" + tk.text + "'");
    if (peek(1).kind == Tok::kLParen && peek(2).kind == Tok::kRParen) {  // name() body
      next();
      next();
      next();
      skip_newlines();
      parse_command();
      return opaque("function definition", line);
    }
    Cmd c;
    c.line = line;
    for (;;) {
      const Token& w = peek();
      if (w.kind == Tok::kWord) {
        c.words.push_back(next().text);
      } else if (w.kind == Tok::kRedir) {
        next();
        c.redirected = true;
        if (peek().kind == Tok::kWord) next();
      } else {
        break;
      }
    }
    return c;
  }

  Cmd parse_if() {
    Cmd c;
    c.kind = Cmd::kIf;
    c.line = peek().line;
    c.if_clause = std::make_shared<IfClause>();
    next();  // if
    for (;;) {
      List cond = parse_list({"then"});
      if (!at_word("then")) fail("missing 'then'");
      next();
      List body = parse_list({"elif", "else", "fi"});
      c.if_clause->branches.emplace_back(std::move(cond), std::move(body));
      if (at_word("elif")) {
        next();
        continue;
      }
      if (at_word("else")) {
        next();
        c.if_clause->otherwise = std::make_unique<List>(parse_list({"fi"}));
      }
      if (!at_word("fi")) fail("missing 'fi'");
      next();
      return c;
    }
  }
};

}  // namespace

std::vector<Token> tokenize(std::string_view s) {
  std::vector<Token> out;
  int line = 1;
  size_t i = 0;
  auto op = [&](Tok k, size_t len) {
    out.push_back({k, std::string(s.substr(i, len)), line});
    i += len;
  };
  while (i < s.size()) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
    } else if (c == '\\' && i + 1 < s.size() && s[i + 1] == '\n') {
      i += 2;
      ++line;
    } else if (c == '#') {
      while (i < s.size() && s[i] != '\n') ++i;
    } else if (c == '\n') {
      op(Tok::kNewline, 1);
      ++line;
    } else if (c == ';') {
      op(Tok::kSemi, 1);
    } else if (c == '&') {
      if (i + 1 < s.size() && s[i + 1] == '&')
        op(Tok::kAnd, 2);
      else
        op(Tok::kAmp, 1);
    } else if (c == '|') {
      if (i + 1 < s.size() && s[i + 1] == '|')
        op(Tok::kOr, 2);
      else
        op(Tok::kPipe, 1);
    } else if (c == '(') {
      op(Tok::kLParen, 1);
    } else if (c == ')') {
      op(Tok::kRParen, 1);
    } else if (c == '<' || c == '>') {
      if (c == '<' && i + 1 < s.size() && s[i + 1] == '<')
        throw Unsupported{"line " + std::to_string(line) + ": here-documents are not supported"};
      size_t len = 1;
      if (i + 1 < s.size() && (s[i + 1] == '>' || s[i + 1] == '&' || s[i + 1] == '|')) len = 2;
      op(Tok::kRedir, len);
    } else {
      // A word: runs to unquoted blank or operator; quotes and $( ) / ${ } / `…` kept whole.
      std::string w;
      int start_line = line;
      while (i < s.size()) {
        char d = s[i];
        if (d == ' ' || d == '\t' || d == '\r' || d == '\n' || d == ';' || d == '&' || d == '|' || d == '(' ||
            d == ')' || d == '<' || d == '>')
          break;
        if (d == '\\') {
          if (i + 1 < s.size() && s[i + 1] == '\n') {
            i += 2;
            ++line;
            continue;
          }
          w += d;
          if (i + 1 < s.size()) w += s[i + 1];
          i += 2;
          continue;
        }
        if (d == '\'') {
          size_t e = s.find('\'', i + 1);
          if (e == std::string_view::npos)
            throw Unsupported{"line " + std::to_string(line) + ": unterminated single quote"};
          for (size_t k = i; k <= e; ++k)
            if (s[k] == '\n') ++line;
          w += s.substr(i, e - i + 1);
          i = e + 1;
          continue;
        }
        if (d == '"' || d == '`') {
          size_t k = i + 1;
          while (k < s.size() && s[k] != d) {
            if (s[k] == '\\') ++k;
            ++k;
          }
          if (k >= s.size()) throw Unsupported{"line " + std::to_string(line) + ": unterminated quote"};
          for (size_t m = i; m <= k; ++m)
            if (s[m] == '\n') ++line;
          w += s.substr(i, k - i + 1);
          i = k + 1;
          continue;
        }
        if (d == '$' && i + 1 < s.size() && (s[i + 1] == '(' || s[i + 1] == '{')) {
          char open = s[i + 1], close = open == '(' ? ')' : '}';
          int depth = 0;
          size_t k = i + 1;
          for (; k < s.size(); ++k) {
            if (s[k] == '\\') {
              ++k;
              continue;
            }
            if (s[k] == open) ++depth;
            if (s[k] == close && --depth == 0) break;
            if (s[k] == '\n') ++line;
          }
          if (k >= s.size()) throw Unsupported{"line " + std::to_string(line) + ": unterminated $" + open};
          w += s.substr(i, k - i + 1);
          i = k + 1;
          continue;
        }
        w += d;
        ++i;
      }
      out.push_back({Tok::kWord, std::move(w), start_line});
    }
  }
  out.push_back({Tok::kEnd, "", line});
  return out;
}

List parse(std::vector<Token> tokens) {
  return Parser(std::move(tokens)).parse_all();
}

}  // namespace rbox::container::sh
