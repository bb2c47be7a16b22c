# Manifest of a tree for the integration tests: one sorted line per entry (type, mode, size, link
# count, mtime, sha256 of regular files, symlink targets, device numbers, xattrs); hard links are
# named by the first path of their inode in walk order.
#   python3 tree_manifest.py DIR [--owners] [--user-xattrs]
# --owners adds uid:gid; --user-xattrs keeps only user.* attributes (the ones rbox packs for
# rootless builds), else all of them.
import hashlib, os, stat, sys

root = sys.argv[1]
owners = '--owners' in sys.argv
user_xattrs = '--user-xattrs' in sys.argv
out, first = [], {}
for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    for name in sorted(dirnames + filenames) + (['.'] if dirpath == root else []):
        p = root if name == '.' else os.path.join(dirpath, name)
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        extra = ''
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(p, 'rb') as f:
                for chunk in iter(lambda: f.read(1 << 20), b''):
                    h.update(chunk)
            extra = 'sha256=' + h.hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            extra = 'target=' + os.readlink(p)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            extra = 'rdev=%d,%d' % (os.major(st.st_rdev), os.minor(st.st_rdev))
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            extra += ' link=' + first.setdefault(st.st_ino, rel)
        size = '-' if stat.S_ISDIR(st.st_mode) else st.st_size
        try:
            xs = sorted(x for x in os.listxattr(p, follow_symlinks=False)
                        if not user_xattrs or x.startswith('user.'))
        except OSError:
            xs = []
        xa = ','.join('%s=%s' % (x, os.getxattr(p, x, follow_symlinks=False).hex()) for x in xs)
        own = ' owner=%d:%d' % (st.st_uid, st.st_gid) if owners else ''
        out.append('%s type=%o mode=%04o size=%s nlink=%d mtime=%d %s xattrs=[%s]%s' % (
            rel, stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), size, st.st_nlink, int(st.st_mtime),
            extra, xa, own))
print('\n'.join(sorted(out)))
