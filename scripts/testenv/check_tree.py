#!/usr/bin/python3
# Checks an unpacked root filesystem against an expectation file written by mkimages.py
# (layers.expect), so tests can assert how the layers image must look after layer application.
# Read-only apart from briefly adding u+r to the user's own mode-0000 files to hash them; it
# never follows a symlink out of ROOT.
#
# Usage: check_tree.py ROOT EXPECT_FILE [--no-owner]
#   --no-owner  skip uid/gid checks (rootless unpacking maps every owner to the user)
# Prints one line per failed expectation and exits 1 if any failed, 0 otherwise.
# Expectation lines (tab-separated):
#   file PATH MODE SHA256 | dir PATH MODE | fifo PATH MODE | symlink PATH TARGET | absent PATH
#   nlink PATH N | same PATH OTHER (same inode) | xattr PATH NAME VALUE | noxattr PATH NAME
#   mtime PATH SECONDS | owner PATH UID:GID | nowhiteouts PATH (no .wh.* name anywhere below)
import hashlib
import os
import stat
import sys


def read_file(p, st):
    try:
        with open(p, "rb") as f:
            return f.read()
    except PermissionError:
        # A mode 0000 file unpacked rootless belongs to the user but is unreadable: grant read
        # for the moment of the check, then put the exact mode back.
        if st.st_uid != os.geteuid():
            raise
        os.chmod(p, stat.S_IMODE(st.st_mode) | stat.S_IRUSR)
        try:
            with open(p, "rb") as f:
                return f.read()
        finally:
            os.chmod(p, stat.S_IMODE(st.st_mode))


def check(root, line, no_owner):
    kind, path, *args = line.split("\t")
    p = os.path.join(root, path)
    try:
        st = os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):
        return None if kind == "absent" else "missing"
    mode = "%04o" % stat.S_IMODE(st.st_mode)
    if kind == "absent":
        return "exists but must not"
    if kind in ("file", "dir", "fifo"):
        want_type = {"file": stat.S_ISREG, "dir": stat.S_ISDIR, "fifo": stat.S_ISFIFO}[kind]
        if not want_type(st.st_mode):
            return "not a %s (mode %o)" % (kind, st.st_mode)
        if mode != args[0]:
            return "mode %s, want %s" % (mode, args[0])
        if kind == "file":
            got = hashlib.sha256(read_file(p, st)).hexdigest()
            if got != args[1]:
                return "content sha256 %s, want %s" % (got, args[1])
        return None
    if kind == "symlink":
        if not stat.S_ISLNK(st.st_mode):
            return "not a symlink"
        target = os.readlink(p)
        return None if target == args[0] else "points to %r, want %r" % (target, args[0])
    if kind == "nlink":
        return None if st.st_nlink == int(args[0]) else "nlink %d, want %s" % (st.st_nlink,
                                                                                args[0])
    if kind == "same":
        other = os.lstat(os.path.join(root, args[0]))
        same = (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino)
        return None if same else "not the same inode as " + args[0]
    if kind in ("xattr", "noxattr"):
        try:
            value = os.getxattr(p, args[0], follow_symlinks=False).decode()
        except OSError:
            value = None
        if kind == "noxattr":
            return None if value is None else "has xattr %s" % args[0]
        return None if value == args[1] else "xattr %s=%r, want %r" % (args[0], value, args[1])
    if kind == "mtime":
        return None if int(st.st_mtime) == int(args[0]) else "mtime %d, want %s" % (
            st.st_mtime, args[0])
    if kind == "owner":
        if no_owner:
            return None
        got = "%d:%d" % (st.st_uid, st.st_gid)
        return None if got == args[0] else "owner %s, want %s" % (got, args[0])
    if kind == "nowhiteouts":
        for d, dirs, files in os.walk(p):
            for n in dirs + files:
                if n.startswith(".wh."):
                    return "whiteout left in tree: " + os.path.join(d, n)
        return None
    return "unknown expectation kind " + kind


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: check_tree.py ROOT EXPECT_FILE [--no-owner]")
    root, expect = sys.argv[1], sys.argv[2]
    no_owner = "--no-owner" in sys.argv[3:]
    failed = 0
    with open(expect, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            err = check(root, line, no_owner)
            if err:
                failed += 1
                print("check_tree: %s: %s" % (line.split("\t")[1], err))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
