// spawntime: interleaved start-up timer for scripts/bench/read.sh. Runs each command N times
// (after W warm-up runs), rotating through the commands so that machine noise hits all of them
// alike, and prints per command: median, min, max in ms. Bench helper only.
//   spawntime N W NAME1 CMD1 [ARGS...] ::: NAME2 CMD2 [ARGS...] ...
// Build: cc -O2 -o spawntime spawntime.c
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CMDS 32

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double run_once(char** argv, int* failed) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 1);
    execvp(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) (*failed)++;
  return (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: spawntime N WARMUP NAME CMD [ARGS...] ::: NAME CMD ...\n");
    return 2;
  }
  int n = atoi(argv[1]), warm = atoi(argv[2]);
  char* names[MAX_CMDS];
  char** cmds[MAX_CMDS];
  int count = 0;
  for (int i = 3; i < argc && count < MAX_CMDS;) {
    names[count] = argv[i++];
    cmds[count] = &argv[i];
    while (i < argc && strcmp(argv[i], ":::") != 0) i++;
    if (i < argc) argv[i++] = NULL;  // terminate this command's argv
    count++;
  }
  double* t = calloc((size_t)(count * n), sizeof(double));
  int failed[MAX_CMDS] = {0};
  int scratch = 0;
  for (int w = 0; w < warm; w++)
    for (int c = 0; c < count; c++) run_once(cmds[c], &scratch);
  for (int r = 0; r < n; r++)
    for (int k = 0; k < count; k++) {
      int c = (k + r) % count;  // rotate the order every round
      t[c * n + r] = run_once(cmds[c], &failed[c]);
    }
  for (int c = 0; c < count; c++) {
    qsort(&t[c * n], (size_t)n, sizeof(double), cmp_double);
    printf("%s\t%.2f\t%.2f\t%.2f\t%d\n", names[c], t[c * n + n / 2], t[c * n], t[c * n + n - 1], failed[c]);
  }
  return 0;
}
