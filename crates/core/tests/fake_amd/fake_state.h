/*
 * Shared by the fake AMD libraries: a `key=value` state file, named by an environment variable
 * and re-read on every call, so that a test drives the fake between reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_MAX_GPUS 4
#define FAKE_MAX_PROCS 8
struct fake_gpu {
    unsigned long long energy; /* accumulator, in resolution units */
    float resolution;          /* µJ per unit */
    unsigned int energy_status;
    unsigned int cur_w, avg_w, cap_w;
    char name[64];
    char uuid[64];
    /* processes (amdsmi): pid and GFX engine busy time (ns); status of the list call */
    unsigned int nprocs;
    unsigned int pid[FAKE_MAX_PROCS];
    unsigned long long gfx_ns[FAKE_MAX_PROCS];
    unsigned int procs_status;
};
struct fake_state {
    unsigned int count;
    unsigned int init_status;
    unsigned int year;
    struct fake_gpu gpu[FAKE_MAX_GPUS];
};

static inline void fake_read_state(const char *var, struct fake_state *s) {
    memset(s, 0, sizeof *s);
    s->count = 1;
    s->year = 24;
    for (int i = 0; i < FAKE_MAX_GPUS; i++) {
        s->gpu[i].resolution = 15.259f;
        s->gpu[i].cur_w = 0xFFFF;
        s->gpu[i].avg_w = 0xFFFF;
        s->gpu[i].cap_w = 0xFFFF;
        snprintf(s->gpu[i].name, sizeof s->gpu[i].name, "AMD Instinct MI210");
        snprintf(s->gpu[i].uuid, sizeof s->gpu[i].uuid, "%dcff74a1-0000-1000-80ab-0d3ac4e6b4c%d", i, i);
    }
    const char *path = getenv(var);
    if (!path) return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = 0;
        const char *k = line, *v = eq + 1;
        if (!strcmp(k, "count")) s->count = (unsigned int)strtoul(v, NULL, 10);
        else if (!strcmp(k, "init_status")) s->init_status = (unsigned int)strtoul(v, NULL, 10);
        else if (!strcmp(k, "year")) s->year = (unsigned int)strtoul(v, NULL, 10);
        else {
            /* per-GPU keys end with the GPU's index: energy0, res1, ens2, cur0, avg0, cap0, name0 */
            size_t n = strlen(k);
            if (n < 2) continue;
            int i = k[n - 1] - '0';
            if (i < 0 || i >= FAKE_MAX_GPUS) continue;
            char key[32];
            if (n - 1 >= sizeof key) continue;
            memcpy(key, k, n - 1);
            key[n - 1] = 0;
            struct fake_gpu *g = &s->gpu[i];
            if (!strcmp(key, "energy")) g->energy = strtoull(v, NULL, 10);
            else if (!strcmp(key, "res")) g->resolution = strtof(v, NULL);
            else if (!strcmp(key, "ens")) g->energy_status = (unsigned int)strtoul(v, NULL, 10);
            else if (!strcmp(key, "cur")) g->cur_w = (unsigned int)strtoul(v, NULL, 10);
            else if (!strcmp(key, "avg")) g->avg_w = (unsigned int)strtoul(v, NULL, 10);
            else if (!strcmp(key, "cap")) g->cap_w = (unsigned int)strtoul(v, NULL, 10);
            else if (!strcmp(key, "name")) snprintf(g->name, sizeof g->name, "%s", v);
            else if (!strcmp(key, "pls")) g->procs_status = (unsigned int)strtoul(v, NULL, 10);
            else if (!strcmp(key, "procs")) {
                /* procs<i>=pid:gfx_ns,pid:gfx_ns,... */
                const char *c = v;
                g->nprocs = 0;
                while (*c && g->nprocs < FAKE_MAX_PROCS) {
                    char *end;
                    unsigned long pid = strtoul(c, &end, 10);
                    if (end == c || *end != ':') break;
                    c = end + 1;
                    unsigned long long ns = strtoull(c, &end, 10);
                    if (end == c) break;
                    g->pid[g->nprocs] = (unsigned int)pid;
                    g->gfx_ns[g->nprocs] = ns;
                    g->nprocs++;
                    c = end;
                    if (*c == ',') c++;
                }
            }
        }
    }
    fclose(f);
    if (s->count > FAKE_MAX_GPUS) s->count = FAKE_MAX_GPUS;
}

/* Count calls in `<state file><suffix>`: the reads of GPU 0's energy counter (`.reads`), so
 * that a test's job can wait (with a deadline) until the sampler has read before it drives the
 * counter; the process lists of GPU 0 (`.lists`). */
static inline void fake_note(const char *var, const char *suffix) {
    const char *path = getenv(var);
    if (!path) return;
    char p[1024];
    snprintf(p, sizeof p, "%s%s", path, suffix);
    long n = 0;
    FILE *f = fopen(p, "r");
    if (f) {
        if (fscanf(f, "%ld", &n) != 1) n = 0;
        fclose(f);
    }
    f = fopen(p, "w");
    if (!f) return;
    fprintf(f, "%ld\n", n + 1);
    fclose(f);
}

static inline void fake_note_read(const char *var) { fake_note(var, ".reads"); }
