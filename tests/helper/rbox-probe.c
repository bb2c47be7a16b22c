/* rbox-probe: a static multi-call test helper copied into test images, so integration tests
 * read facts from inside a container without depending on a distribution's tools. Each
 * subcommand prints one line and exits 0 on success, 1 when the operation failed (printing
 * "error: ERRNO_NAME strerror"), 2 on bad usage. It only attempts operations; it never retries
 * or works around a refusal. Built with -static (CMake target rbox-probe; the tests also build
 * it with `cc -static` when no build tree is given).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

static const char* errno_name(int e) {
  switch (e) {
    case EPERM:
      return "EPERM";
    case ENOENT:
      return "ENOENT";
    case ESRCH:
      return "ESRCH";
    case EACCES:
      return "EACCES";
    case EEXIST:
      return "EEXIST";
    case ENOTDIR:
      return "ENOTDIR";
    case EINVAL:
      return "EINVAL";
    case EROFS:
      return "EROFS";
    case EBUSY:
      return "EBUSY";
    case ENOSYS:
      return "ENOSYS";
    case EBADF:
      return "EBADF";
    case ELOOP:
      return "ELOOP";
    case ENOTEMPTY:
      return "ENOTEMPTY";
    case EXDEV:
      return "EXDEV";
    default:
      return "EOTHER";
  }
}

static int fail(const char* what) {
  int e = errno;
  printf("error: %s %s: %s\n", errno_name(e), what, strerror(e));
  return 1;
}

static int usage(void) {
  fprintf(stderr,
          "usage: rbox-probe id | cwd | env [NAME] | stat PATH | read PATH | write PATH [TEXT] | ls DIR |\n"
          "       readlink PATH | mknod PATH | kill PID [SIG] | ptrace PID | setuid UID | setgid GID |\n"
          "       chown PATH UID GID | mount-tmpfs DIR | remount-rw PATH | umount PATH | chroot-escape |\n"
          "       pid | ppid | sleep SECONDS | exit CODE | signal-self SIG | caps\n");
  return 2;
}

static const char* type_name(mode_t m) {
  if (S_ISDIR(m)) return "dir";
  if (S_ISREG(m)) return "file";
  if (S_ISLNK(m)) return "link";
  if (S_ISCHR(m)) return "chr";
  if (S_ISBLK(m)) return "blk";
  if (S_ISFIFO(m)) return "fifo";
  return "sock";
}

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const char* cmd = argv[1];
  const char* a = argc > 2 ? argv[2] : NULL;
  const char* b = argc > 3 ? argv[3] : NULL;

  if (!strcmp(cmd, "id")) {
    gid_t groups[256];
    int n = getgroups(256, groups);
    printf("uid=%u gid=%u euid=%u egid=%u groups=", (unsigned)getuid(), (unsigned)getgid(),
           (unsigned)geteuid(), (unsigned)getegid());
    for (int i = 0; i < n; ++i) printf("%s%u", i ? "," : "", (unsigned)groups[i]);
    printf("\n");
    return 0;
  }
  if (!strcmp(cmd, "cwd")) {
    char buf[4096];
    if (!getcwd(buf, sizeof buf)) return fail("getcwd");
    printf("%s\n", buf);
    return 0;
  }
  if (!strcmp(cmd, "env")) {
    if (a) {
      const char* v = getenv(a);
      if (!v) {
        printf("<unset>\n");
        return 1;
      }
      printf("%s\n", v);
      return 0;
    }
    for (char** e = environ; *e; ++e) printf("%s\n", *e);
    return 0;
  }
  if (!strcmp(cmd, "pid")) {
    printf("%d\n", (int)getpid());
    return 0;
  }
  if (!strcmp(cmd, "ppid")) {
    printf("%d\n", (int)getppid());
    return 0;
  }
  if (!strcmp(cmd, "caps")) {
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
      if (!strncmp(line, "CapEff:", 7) || !strncmp(line, "NoNewPrivs:", 11)) fputs(line, stdout);
    if (f) fclose(f);
    return 0;
  }
  if (!strcmp(cmd, "exit") && a) return atoi(a);
  if (!strcmp(cmd, "sleep") && a) {
    sleep((unsigned)atoi(a));
    printf("slept\n");
    return 0;
  }
  if (!strcmp(cmd, "signal-self") && a) {
    signal(atoi(a), SIG_DFL);
    kill(getpid(), atoi(a));
    pause();
    return 0;
  }
  if (!strcmp(cmd, "stat") && a) {
    struct stat st;
    if (lstat(a, &st) != 0) return fail("lstat");
    printf("type=%s mode=%o uid=%u gid=%u size=%lld\n", type_name(st.st_mode), (unsigned)(st.st_mode & 07777),
           (unsigned)st.st_uid, (unsigned)st.st_gid, (long long)st.st_size);
    return 0;
  }
  if (!strcmp(cmd, "read") && a) {
    int fd = open(a, O_RDONLY);
    if (fd < 0) return fail("open");
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, stdout);
    close(fd);
    return n < 0 ? fail("read") : 0;
  }
  if (!strcmp(cmd, "write") && a) {
    int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return fail("open");
    const char* text = b ? b : "probe\n";
    if (write(fd, text, strlen(text)) < 0) return fail("write");
    if (close(fd) != 0) return fail("close");
    printf("ok\n");
    return 0;
  }
  if (!strcmp(cmd, "ls") && a) {
    DIR* d = opendir(a);
    if (!d) return fail("opendir");
    struct dirent* e;
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) printf("%s\n", e->d_name);
    closedir(d);
    return 0;
  }
  if (!strcmp(cmd, "readlink") && a) {
    char buf[4096];
    ssize_t n = readlink(a, buf, sizeof buf - 1);
    if (n < 0) return fail("readlink");
    buf[n] = 0;
    printf("%s\n", buf);
    return 0;
  }
  if (!strcmp(cmd, "mknod") && a) {
    if (mknod(a, S_IFCHR | 0666, makedev(1, 3)) != 0) return fail("mknod");
    /* Created: is it a usable device? (a nodev mount makes open fail) */
    int fd = open(a, O_RDWR);
    if (fd < 0) return fail("open device");
    close(fd);
    printf("ok\n");
    return 0;
  }
  if (!strcmp(cmd, "kill") && a) {
    if (kill(atoi(a), b ? atoi(b) : 0) != 0) return fail("kill");
    printf("ok\n");
    return 0;
  }
  if (!strcmp(cmd, "ptrace") && a) {
    pid_t pid = atoi(a);
    if (ptrace(PTRACE_ATTACH, pid, 0, 0) != 0) return fail("ptrace");
    waitpid(pid, NULL, 0);
    ptrace(PTRACE_DETACH, pid, 0, 0);
    printf("ok\n");
    return 0;
  }
  if (!strcmp(cmd, "setuid") && a) {
    uid_t u = (uid_t)atoi(a);
    if (setresuid(u, u, u) != 0) return fail("setresuid");
    printf("uid=%u\n", (unsigned)getuid());
    return 0;
  }
  if (!strcmp(cmd, "setgid") && a) {
    gid_t g = (gid_t)atoi(a);
    if (setresgid(g, g, g) != 0) return fail("setresgid");
    printf("gid=%u\n", (unsigned)getgid());
    return 0;
  }
  if (!strcmp(cmd, "chown") && a && b && argc > 4) {
    if (chown(a, (uid_t)atoi(b), (gid_t)atoi(argv[4])) != 0) return fail("chown");
    printf("ok\n");
    return 0;
  }
  if (!strcmp(cmd, "mount-tmpfs") && a) {
    if (mount("probe", a, "tmpfs", 0, NULL) != 0) return fail("mount");
    printf("ok\n");
    return 0;
  }
  if (!strcmp(cmd, "remount-rw") && a) {
    if (mount(NULL, a, NULL, MS_REMOUNT | MS_BIND, NULL) != 0) return fail("remount");
    printf("ok\n");
    return 0;
  }
  if (!strcmp(cmd, "umount") && a) {
    if (umount2(a, MNT_DETACH) != 0) return fail("umount");
    printf("ok\n");
    return 0;
  }
  if (!strcmp(cmd, "chroot-escape")) {
    /* The classic escape: chroot into a subdirectory while keeping the cwd outside it, then
     * walk up with "..". After pivot_root and a detached old root there is nothing above. */
    char dir[] = "/tmp/rbox-probe-XXXXXX";
    if (!mkdtemp(dir)) return fail("mkdtemp");
    if (chroot(dir) != 0) {
      rmdir(dir);
      return fail("chroot");
    }
    for (int i = 0; i < 64; ++i)
      if (chdir("..") != 0) break;
    if (chroot(".") != 0) return fail("chroot .");
    DIR* d = opendir("/");
    struct dirent* e;
    while (d && (e = readdir(d)))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) printf("%s\n", e->d_name);
    if (d) closedir(d);
    return 0;
  }
  return usage();
}
