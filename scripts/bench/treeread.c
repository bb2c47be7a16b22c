// treeread: a parallel tree walk for scripts/bench/read.sh. N threads share a queue of
// directories; every entry is lstat()ed, every regular file read to the end (256 KiB buffer),
// every symlink readlink()ed. One thread behaves like tar; N threads are "N concurrent readers".
// Bench helper only: reads, never writes. Build: cc -O2 -pthread -o treeread treeread.c
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char** queue;
static size_t queue_len, queue_cap;
static int active;  // workers currently expanding a directory
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned long long n_files, n_dirs, n_links, n_other, n_bytes, n_errors;

static void push(char* path) {
  pthread_mutex_lock(&mu);
  if (queue_len == queue_cap) {
    queue_cap = queue_cap ? queue_cap * 2 : 1024;
    queue = realloc(queue, queue_cap * sizeof(*queue));
    if (queue == NULL) abort();
  }
  queue[queue_len++] = path;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
}

static void* worker(void* arg) {
  (void)arg;
  char* buf = malloc(256 * 1024);
  unsigned long long files = 0, dirs = 0, links = 0, other = 0, bytes = 0, errors = 0;
  for (;;) {
    pthread_mutex_lock(&mu);
    while (queue_len == 0 && active > 0) pthread_cond_wait(&cv, &mu);
    if (queue_len == 0) {  // nothing queued and nobody can queue more: done
      pthread_cond_broadcast(&cv);
      pthread_mutex_unlock(&mu);
      break;
    }
    char* dir = queue[--queue_len];
    active++;
    pthread_mutex_unlock(&mu);

    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d == NULL) {
      errors++;
      if (dfd >= 0) close(dfd);
    } else {
      dirs++;
      struct dirent* e;
      while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
          errors++;
          continue;
        }
        if (S_ISDIR(st.st_mode)) {
          size_t n = strlen(dir) + strlen(e->d_name) + 2;
          char* sub = malloc(n);
          snprintf(sub, n, "%s/%s", dir, e->d_name);
          push(sub);
        } else if (S_ISREG(st.st_mode)) {
          int fd = openat(dfd, e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
          if (fd < 0) {
            errors++;
            continue;
          }
          ssize_t r;
          while ((r = read(fd, buf, 256 * 1024)) > 0) bytes += (unsigned long long)r;
          if (r < 0) errors++;
          close(fd);
          files++;
        } else if (S_ISLNK(st.st_mode)) {
          char target[4096];
          if (readlinkat(dfd, e->d_name, target, sizeof(target)) < 0) errors++;
          links++;
        } else {
          other++;
        }
      }
      closedir(d);
    }
    free(dir);
    pthread_mutex_lock(&mu);
    active--;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
  }
  pthread_mutex_lock(&mu);
  n_files += files, n_dirs += dirs, n_links += links, n_other += other, n_bytes += bytes, n_errors += errors;
  pthread_mutex_unlock(&mu);
  free(buf);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: treeread DIR [THREADS]\n");
    return 2;
  }
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  if (threads < 1 || threads > 256) threads = 1;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  push(strdup(argv[1]));
  pthread_t tid[256];
  for (int i = 0; i < threads; i++) pthread_create(&tid[i], NULL, worker, NULL);
  for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  printf("ms=%.1f files=%llu dirs=%llu links=%llu other=%llu bytes=%llu errors=%llu\n", ms, n_files, n_dirs,
         n_links, n_other, n_bytes, n_errors);
  return n_errors ? 1 : 0;
}
