// rbox registry login|logout: credentials in the docker-format auth file (mode 0600).
// The password is read from a prompt without echo or from --password-stdin; it is never printed.
#include <termios.h>
#include <unistd.h>

#include <iostream>

#include "cli/app.hpp"
#include "oci/auth.hpp"
#include "oci/reference.hpp"
#include "oci/registry.hpp"
#include "util/error.hpp"
#include "util/exit_codes.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rbox::cli {
namespace {

struct LoginOpts {
  std::string registry, username, password, authfile, ca_file;
  bool password_stdin = false, insecure = false, no_verify = false;
};

std::string read_line(bool echo, const std::string& prompt) {
  bool tty = ::isatty(STDIN_FILENO);
  struct termios old {};
  if (tty) {
    std::cerr << prompt << std::flush;
    if (!echo && ::tcgetattr(STDIN_FILENO, &old) == 0) {
      struct termios quiet = old;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty && !echo) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::string registry_name(const std::string& arg) {
  std::string r = oci::normalize_registry(arg);
  if (r.empty()) throw Error("no registry given; e.g. rbox registry login docker://localhost:5000");
  return r;
}

int login(const LoginOpts& o) {
  std::string reg = registry_name(o.registry);
  std::string user = o.username;
  if (user.empty()) {
    if (!::isatty(STDIN_FILENO) || o.password_stdin) throw Error("give the user name with --username");
    user = read_line(true, "Username: ");
  }
  std::string pass = o.password;
  if (!pass.empty() && o.password_stdin) throw Error("give either --password or --password-stdin, not both");
  if (pass.empty()) pass = read_line(false, "Password: ");
  if (user.empty() || pass.empty()) throw Error("user name and password must not be empty");
  oci::Credentials creds{user, pass};
  if (!o.no_verify) {
    oci::RegistryOptions ro;
    ro.ca_file = o.ca_file;
    ro.insecure = o.insecure;
    ro.credentials = creds;
    oci::Reference ref;
    ref.registry = reg;
    ref.repository = "library/x";  // not used by the login check
    ref.tag = "latest";
    oci::Registry registry(ref, ro);
    oci::http::Client client(o.ca_file);
    registry.check_login(client);
  }
  oci::AuthConfig ac;
  ac.authfile = o.authfile;
  std::string file = ac.file_to_write();
  oci::store_credentials(file, reg, creds);
  log::info("logged in to " + reg + " (credentials stored in " + file + ")");
  return exit_code::kOk;
}

int logout(const LoginOpts& o) {
  std::string reg = registry_name(o.registry);
  oci::AuthConfig ac;
  ac.authfile = o.authfile;
  std::string file = ac.file_to_write();
  if (!oci::remove_credentials(file, reg)) {
    log::info("not logged in to " + reg + " (no entry in " + file + ")");
    return exit_code::kOk;
  }
  log::info("removed the credentials for " + reg + " from " + file);
  return exit_code::kOk;
}

}  // namespace

void register_registry(CLI::App& app, Context& ctx) {
  auto* reg = add_command(app, "registry", "Log in to or out of a container registry",
                          {"rbox registry login --username me docker://registry.example.org",
                           "rbox registry logout docker://registry.example.org"});
  reg->require_subcommand(1);
  auto* login_cmd = add_command(*reg, "login", "Store credentials for a registry",
                                {"rbox registry login -u me --password-stdin docker://ghcr.io",
                                 "rbox registry login -u me docker://localhost:5000"});
  auto* logout_cmd =
      add_command(*reg, "logout", "Remove stored credentials for a registry",
                  {"rbox registry logout docker://ghcr.io", "rbox registry logout docker://localhost:5000"});
  auto o = std::make_shared<LoginOpts>();
  login_cmd->add_option("registry", o->registry, "docker://HOST[:PORT] or HOST[:PORT]")->required();
  login_cmd->add_option("-u,--username", o->username, "User name");
  login_cmd->add_option("-p,--password", o->password,
                        "Password (visible to other users in ps; prefer --password-stdin)");
  login_cmd->add_flag("--password-stdin", o->password_stdin, "Read the password from standard input");
  login_cmd->add_option("--authfile", o->authfile,
                        "Credentials file (default $REGISTRY_AUTH_FILE or ~/.docker/config.json)");
  login_cmd->add_option("--ca-file", o->ca_file, "CA bundle to verify the registry with");
  login_cmd->add_flag("--insecure,--no-https", o->insecure, "Allow plain HTTP to a non-loopback registry");
  login_cmd->add_flag("--no-verify", o->no_verify, "Store the credentials without checking them");
  logout_cmd->add_option("registry", o->registry, "docker://HOST[:PORT] or HOST[:PORT]")->required();
  logout_cmd->add_option("--authfile", o->authfile,
                         "Credentials file (default $REGISTRY_AUTH_FILE or ~/.docker/config.json)");
  on_run(login_cmd, ctx, [o] { return login(*o); });
  on_run(logout_cmd, ctx, [o] { return logout(*o); });
}

}  // namespace rbox::cli
