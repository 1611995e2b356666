/*
 * The Windows check's test program (tools/windows_check.sh builds it with MinGW-w64 and runs it under Wine):
 * drives pydarknet.dll through its C API, exactly as pydarknet/_native.py does, in one process.
 *
 *   pdn_check <cfg> <weights> <out_dir> <image>...
 *
 * 1. Bad input darknet itself would end the process on (a cfg it rejects, a missing file, truncated weights, a
 *    network too large to allocate) must come back as errors of the right kind, with darknet's words: the process
 *    surviving each is the point.
 * 2. Seeded initial weights must be the same twice (darknet's srand() calls are frozen by the hooks).
 * 3. Each image (decoded with darknet's own stb_image) is detected; the detections, and the decoded BGR pixels
 *    (<out_dir>/<n>.bgr) for the Linux comparison in tests/test_windows_wine.py, are written to
 *    <out_dir>/results.json.
 * 4. Paths with non-ASCII characters, UTF-8 encoded as pydarknet passes them (a folder "mod\u00e8le-\u65e5\u672c"):
 *    the cfg and weights copied there load and detect as from an ASCII path, a missing file there is named in the
 *    error, initial weights are written there.  On Windows the narrow fopen() of such a path is shown to fail
 *    first (the ANSI code page), so the hooks' UTF-16 conversion is what makes it work.
 * 5. Windows: which errors MoveFileExW (os.replace) gives for a file that another handle holds open, the ones
 *    pydarknet/atomic.py's replace() waits out (tests/test_windows_wine.py compares).
 *
 * Exit status 0 when every check passed, 1 otherwise (each failure is printed), 2 on bad usage.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#include "stb_image.h"

#include "pdn_api.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <sys/stat.h>
#endif

/* the folder of step 4, UTF-8: "mod" e-grave "le-" and the two characters of "Japan" */
#define NON_ASCII_FOLDER "mod\xc3\xa8le-\xe6\x97\xa5\xe6\x9c\xac"

static int failures;

#define FAIL(...)                                                                                                  \
    do {                                                                                                           \
        fprintf(stderr, "FAIL: " __VA_ARGS__);                                                                     \
        fputc('\n', stderr);                                                                                       \
        failures++;                                                                                                \
    } while (0)

static char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = (char *)malloc((size_t)n + 1);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    if (data) {
        data[n] = '\0';
        *size = (size_t)n;
    }
    return data;
}

static int write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    size_t done;
    if (!f) return -1;
    done = fwrite(data, 1, size, f);
    return fclose(f) == 0 && done == size ? 0 : -1;
}

#if defined(_WIN32)
static wchar_t *wide(const char *utf8)   /* malloc'd */
{
    int n = MultiByteToWideChar(CP_UTF8, 0, utf8, -1, NULL, 0);
    wchar_t *w = (wchar_t *)malloc(sizeof(wchar_t) * (size_t)(n > 0 ? n : 1));
    if (n <= 0 || !MultiByteToWideChar(CP_UTF8, 0, utf8, -1, w, n)) w[0] = L'\0';
    return w;
}
#endif

/* This program's own files under UTF-8 paths, opened the way that works for them on each system */
static FILE *fopen_utf8(const char *path, const char *mode)
{
#if defined(_WIN32)
    wchar_t *wpath = wide(path), *wmode = wide(mode);
    FILE *f = _wfopen(wpath, wmode);
    free(wpath);
    free(wmode);
    return f;
#else
    return fopen(path, mode);
#endif
}

static int mkdir_utf8(const char *path)
{
#if defined(_WIN32)
    wchar_t *wpath = wide(path);
    int ok = CreateDirectoryW(wpath, NULL) || GetLastError() == ERROR_ALREADY_EXISTS;
    free(wpath);
    return ok ? 0 : -1;
#else
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
#endif
}

static int write_file_utf8(const char *path, const void *data, size_t size)
{
    FILE *f = fopen_utf8(path, "wb");
    size_t done;
    if (!f) return -1;
    done = fwrite(data, 1, size, f);
    return fclose(f) == 0 && done == size ? 0 : -1;
}

/* text with every `old` replaced by `new` (malloc'd) */
static char *replace_all(const char *text, const char *old, const char *new_text)
{
    size_t count = 0, lo = strlen(old), ln = strlen(new_text);
    const char *p;
    char *out, *q;
    for (p = strstr(text, old); p; p = strstr(p + lo, old)) count++;
    out = (char *)malloc(strlen(text) + count * (ln + 1) + 1);
    for (q = out, p = text;;) {
        const char *hit = strstr(p, old);
        size_t keep = hit ? (size_t)(hit - p) : strlen(p);
        memcpy(q, p, keep);
        q += keep;
        if (!hit) break;
        memcpy(q, new_text, ln);
        q += ln;
        p = hit + lo;
    }
    *q = '\0';
    return out;
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; ++s) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c < 0x20) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

/* One bad input: opening must fail with `kind`, the message holding each of the fragments. */
static void expect_error(FILE *json, const char *name, const char *cfg, const char *weights, int kind,
                         const char *fragment1, const char *fragment2)
{
    pdn_detector *d = pdn_detector_open(cfg, weights, 1, -1, 0);
    const char *message = pdn_last_error();
    int got = pdn_last_error_kind();
    printf("bad input %-22s -> kind %d: %.160s\n", name, got, message);
    fflush(stdout);
    if (d) {
        FAIL("%s: the detector opened", name);
        pdn_detector_close(d);
    } else {
        if (got != kind) FAIL("%s: error kind %d, expected %d (%s)", name, got, kind, message);
        if (fragment1 && !strstr(message, fragment1)) FAIL("%s: '%s' not in the error: %s", name, fragment1, message);
        if (fragment2 && !strstr(message, fragment2)) FAIL("%s: '%s' not in the error: %s", name, fragment2, message);
    }
    static int cases;
    fprintf(json, "%s\n    {\"case\": ", cases++ ? "," : "");
    json_string(json, name);
    fprintf(json, ", \"opened\": %s, \"kind\": %d, \"message\": ", d ? "true" : "false", got);
    json_string(json, message);
    fputc('}', json);
}

static void bad_inputs(FILE *json, const char *cfg, const char *weights, const char *dir)
{
    char path[4096], path2[4096];
    size_t cfg_size, weights_size;
    char *text = read_file(cfg, &cfg_size), *edited;
    char *data = read_file(weights, &weights_size);
    if (!text || !data) {
        FAIL("cannot read %s or %s", cfg, weights);
        return;
    }
    fprintf(json, "  \"bad_input\": [");

    snprintf(path, sizeof path, "%s/nope.cfg", dir);
    expect_error(json, "missing cfg", path, weights, PDN_ERR_FILE, "could not open file", "nope.cfg");

    snprintf(path, sizeof path, "%s/nope.weights", dir);
    expect_error(json, "missing weights", cfg, path, PDN_ERR_FILE, "could not open file", "nope.weights");

    /* darknet's parse_yolo: error("Error: l.outputs == params.inputs") after printing what to fix */
    edited = replace_all(text, "classes=80", "classes=2");
    snprintf(path, sizeof path, "%s/classes.cfg", dir);
    write_file(path, edited, strlen(edited));
    free(edited);
    expect_error(json, "filters do not match", path, weights, PDN_ERR_CONFIG, "l.outputs == params.inputs",
                 "filters= in the [convolutional]-layer doesn't correspond to classes=");

    /* darknet prints the unknown section, then gives up on the next layer (exit() inside parse_network_cfg) */
    edited = replace_all(text, "[maxpool]", "[shuffle]");
    snprintf(path, sizeof path, "%s/shuffle.cfg", dir);
    write_file(path, edited, strlen(edited));
    free(edited);
    expect_error(json, "unknown layer type", path, weights, PDN_ERR_CONFIG, "Type not recognized: [shuffle]", NULL);

    /* darknet's calloc of a layer whose int size overflowed fails: out of memory, not a crash or an exit */
    edited = replace_all(text, "width=416\nheight=416", "width=200000\nheight=200000");
    if (strcmp(edited, text) == 0) {   /* a cfg written with \r\n line ends */
        free(edited);
        edited = replace_all(text, "width=416\r\nheight=416", "width=200000\r\nheight=200000");
    }
    snprintf(path, sizeof path, "%s/huge.cfg", dir);
    write_file(path, edited, strlen(edited));
    free(edited);
    expect_error(json, "too large to allocate", path, weights, PDN_ERR_MEMORY, "out of memory", "overflowed");

    /* darknet reads what there is and carries on; the counted fread() catches it */
    snprintf(path2, sizeof path2, "%s/half.weights", dir);
    write_file(path2, data, weights_size / 2);
    expect_error(json, "truncated weights", cfg, path2, PDN_ERR_WEIGHTS, "truncated", "half.weights");
    remove(path2);

    fprintf(json, "\n  ],\n");
    free(text);
    free(data);
}

static void seeded_weights(FILE *json, const char *cfg, const char *dir)
{
    char a[4096], b[4096];
    size_t na = 0, nb = 0;
    char *da, *db;
    int same;
    snprintf(a, sizeof a, "%s/seed_a.weights", dir);
    snprintf(b, sizeof b, "%s/seed_b.weights", dir);
    if (pdn_write_initial_weights(cfg, a, 7, 1) || pdn_write_initial_weights(cfg, b, 7, 1)) {
        FAIL("pdn_write_initial_weights: %s", pdn_last_error());
        fprintf(json, "  \"seeded_weights_identical\": false,\n");
        return;
    }
    da = read_file(a, &na);
    db = read_file(b, &nb);
    same = da && db && na == nb && memcmp(da, db, na) == 0;
    printf("seeded initial weights: %zu bytes, %s\n", na, same ? "identical" : "DIFFERENT");
    if (!same) FAIL("two networks written from seed 7 differ (darknet's srand(time(0)) got through)");
    fprintf(json, "  \"seeded_weights_identical\": %s,\n", same ? "true" : "false");
    free(da);
    free(db);
    remove(a);
    remove(b);
}

static void detections(FILE *json, const char *cfg, const char *weights, const char *dir, int n_images,
                       char **images)
{
    pdn_detector *d = pdn_detector_open(cfg, weights, 1, -1, 0);
    int i;
    fprintf(json, "  \"images\": [");
    if (!d) {
        FAIL("cannot open the detector: %s", pdn_last_error());
        fprintf(json, "],\n");
        return;
    }
    for (i = 0; i < n_images; ++i) {
        int w, h, c, x, n, k;
        unsigned char *rgb = stbi_load(images[i], &w, &h, &c, 3);
        uint8_t *bgr;
        const uint8_t *frames[1];
        int64_t stride;
        int32_t *image_index, *class_id;
        float *conf, *xyxy;
        char raw[4096];
        if (!rgb) {
            FAIL("cannot decode %s", images[i]);
            continue;
        }
        bgr = (uint8_t *)malloc((size_t)w * h * 3);
        for (x = 0; x < w * h; ++x) {
            bgr[3 * x] = rgb[3 * x + 2];
            bgr[3 * x + 1] = rgb[3 * x + 1];
            bgr[3 * x + 2] = rgb[3 * x];
        }
        stbi_image_free(rgb);
        snprintf(raw, sizeof raw, "%s/image%d.bgr", dir, i);
        write_file(raw, bgr, (size_t)w * h * 3);
        frames[0] = bgr;
        stride = 3 * (int64_t)w;
        n = pdn_detect(d, 1, frames, &h, &w, &stride, 0.25f, 0.45f, -1);
        if (n < 0) {
            FAIL("%s: pdn_detect failed: %s", images[i], pdn_last_error());
            free(bgr);
            continue;
        }
        image_index = (int32_t *)malloc(sizeof(int32_t) * (n + 1));
        class_id = (int32_t *)malloc(sizeof(int32_t) * (n + 1));
        conf = (float *)malloc(sizeof(float) * (n + 1));
        xyxy = (float *)malloc(4 * sizeof(float) * (n + 1));
        pdn_detector_results(d, image_index, class_id, conf, xyxy, n);
        printf("%s (%d x %d): %d detections\n", images[i], w, h, n);
        fprintf(json, "%s\n    {\"file\": ", i ? "," : "");
        json_string(json, images[i]);
        fprintf(json, ", \"width\": %d, \"height\": %d, \"bgr\": \"image%d.bgr\", \"detections\": [", w, h, i);
        for (k = 0; k < n; ++k) {
            printf("  class %2d  %.4f  [%.2f %.2f %.2f %.2f]\n", class_id[k], conf[k], xyxy[4 * k], xyxy[4 * k + 1],
                   xyxy[4 * k + 2], xyxy[4 * k + 3]);
            fprintf(json, "%s[%d, %.7g, %.7g, %.7g, %.7g, %.7g]", k ? ", " : "", class_id[k], conf[k], xyxy[4 * k],
                    xyxy[4 * k + 1], xyxy[4 * k + 2], xyxy[4 * k + 3]);
        }
        fprintf(json, "]}");
        if (n == 0) FAIL("%s: nothing detected", images[i]);
        free(image_index);
        free(class_id);
        free(conf);
        free(xyxy);
        free(bgr);
    }
    fprintf(json, "\n  ],\n");
    pdn_detector_close(d);
}

/* The first image's detections with one detector (n, or -1 on failure; rows of class, confidence, box) */
static int detect_rows(pdn_detector *d, const char *image, float *rows, int capacity)
{
    int w, h, c, x, n, k;
    unsigned char *rgb = stbi_load(image, &w, &h, &c, 3);
    const uint8_t *frames[1];
    int64_t stride;
    int32_t image_index[256], class_id[256];
    float conf[256], xyxy[4 * 256];
    if (!rgb) return -1;
    for (x = 0; x < w * h; ++x) {   /* RGB to BGR in place */
        unsigned char r = rgb[3 * x];
        rgb[3 * x] = rgb[3 * x + 2];
        rgb[3 * x + 2] = r;
    }
    frames[0] = rgb;
    stride = 3 * (int64_t)w;
    n = pdn_detect(d, 1, frames, &h, &w, &stride, 0.25f, 0.45f, -1);
    stbi_image_free(rgb);
    if (n < 0 || n > 256 || n > capacity) return -1;
    pdn_detector_results(d, image_index, class_id, conf, xyxy, n);
    for (k = 0; k < n; ++k) {
        rows[6 * k] = (float)class_id[k];
        rows[6 * k + 1] = conf[k];
        memcpy(rows + 6 * k + 2, xyxy + 4 * k, 4 * sizeof(float));
    }
    return n;
}

static void non_ascii_paths(FILE *json, const char *cfg, const char *weights, const char *dir, const char *image)
{
    char folder[4096], cfg2[4096], weights2[4096], missing[4096], seeded[4096];
    size_t cfg_size = 0, weights_size = 0;
    char *text = read_file(cfg, &cfg_size), *data = read_file(weights, &weights_size);
    int narrow_failed = -1, opened = 0, same = 0, n_ascii = -1, n_utf8 = -1, missing_kind = 0, seeded_ok = 0;
    char missing_message[1024] = "";
    pdn_detector *d;
    static float rows_ascii[6 * 256], rows_utf8[6 * 256];
    FILE *f;

    snprintf(folder, sizeof folder, "%s/%s", dir, NON_ASCII_FOLDER);
    snprintf(cfg2, sizeof cfg2, "%s/yolov3-tiny.cfg", folder);
    snprintf(weights2, sizeof weights2, "%s/yolov3-tiny.weights", folder);
    snprintf(missing, sizeof missing, "%s/nope.weights", folder);
    snprintf(seeded, sizeof seeded, "%s/seeded.weights", folder);
    if (!text || !data || mkdir_utf8(folder) || write_file_utf8(cfg2, text, cfg_size) ||
        write_file_utf8(weights2, data, weights_size)) {
        FAIL("cannot copy the model into %s", folder);
    } else {
#if defined(_WIN32)
        /* what darknet's own fopen() would do: read the UTF-8 bytes in the ANSI code page */
        f = fopen(cfg2, "rb");
        narrow_failed = f == NULL;
        if (f) fclose(f);
        printf("non-ASCII path: ANSI code page %u, narrow fopen %s\n", GetACP(), f ? "opened it" : "failed");
#endif
        d = pdn_detector_open(cfg, weights, 1, -1, 0);
        if (d) {
            n_ascii = detect_rows(d, image, rows_ascii, 256);
            pdn_detector_close(d);
        }
        d = pdn_detector_open(cfg2, weights2, 1, -1, 0);
        opened = d != NULL;
        if (!d) {
            FAIL("the detector did not open from %s: %s", folder, pdn_last_error());
        } else {
            n_utf8 = detect_rows(d, image, rows_utf8, 256);
            pdn_detector_close(d);
        }
        same = n_ascii > 0 && n_ascii == n_utf8 && memcmp(rows_ascii, rows_utf8, 6 * sizeof(float) * n_ascii) == 0;
        printf("non-ASCII path: opened %d, %d detections (%d from the ASCII path), %s\n", opened, n_utf8, n_ascii,
               same ? "identical" : "DIFFERENT");
        if (opened && !same) FAIL("detections from %s differ from the ASCII path's", folder);

        d = pdn_detector_open(cfg2, missing, 1, -1, 0);
        missing_kind = pdn_last_error_kind();
        snprintf(missing_message, sizeof missing_message, "%s", pdn_last_error());
        printf("non-ASCII path: missing weights -> kind %d: %.160s\n", missing_kind, missing_message);
        if (d) {
            FAIL("a missing weights file in %s opened", folder);
            pdn_detector_close(d);
        } else if (missing_kind != PDN_ERR_FILE || !strstr(missing_message, NON_ASCII_FOLDER "/nope.weights")) {
            FAIL("a missing weights file in %s: kind %d, %s", folder, missing_kind, missing_message);
        }

        if (pdn_write_initial_weights(cfg2, seeded, 7, 1)) {
            FAIL("pdn_write_initial_weights into %s: %s", folder, pdn_last_error());
        } else {
            f = fopen_utf8(seeded, "rb");
            seeded_ok = f != NULL;
            if (f) fclose(f);
            if (!seeded_ok) FAIL("%s was not written", seeded);
        }
    }
    fprintf(json, "  \"non_ascii\": {\"folder\": ");
    json_string(json, NON_ASCII_FOLDER);
    fprintf(json, ", \"narrow_fopen_failed\": %s, \"opened\": %s, \"detections\": %d, \"same_as_ascii\": %s, "
                  "\"missing_kind\": %d, \"missing_message\": ",
            narrow_failed < 0 ? "null" : narrow_failed ? "true" : "false", opened ? "true" : "false", n_utf8,
            same ? "true" : "false", missing_kind);
    json_string(json, missing_message);
    fprintf(json, ", \"initial_weights_written\": %s},\n", seeded_ok ? "true" : "false");
    free(text);
    free(data);
}

/* Step 5: os.replace is MoveFileExW(src, dst, MOVEFILE_REPLACE_EXISTING); a handle opened as nearly every program
 * opens files (sharing read and write, not delete) on the target, then on the source. */
static void replace_open_files(FILE *json, const char *dir)
{
#if defined(_WIN32)
    char src[4096], dst[4096];
    wchar_t *wsrc, *wdst;
    DWORD onto_open_target = 0, of_open_source = 0, after_close = 0;
    HANDLE h;
    snprintf(src, sizeof src, "%s/replace_src.txt", dir);
    snprintf(dst, sizeof dst, "%s/replace_dst.txt", dir);
    write_file(src, "new", 3);
    write_file(dst, "old", 3);
    wsrc = wide(src);
    wdst = wide(dst);
    h = CreateFileW(wdst, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
    if (!MoveFileExW(wsrc, wdst, MOVEFILE_REPLACE_EXISTING)) onto_open_target = GetLastError();
    CloseHandle(h);
    h = CreateFileW(wsrc, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
    if (!MoveFileExW(wsrc, wdst, MOVEFILE_REPLACE_EXISTING)) of_open_source = GetLastError();
    CloseHandle(h);
    if (!MoveFileExW(wsrc, wdst, MOVEFILE_REPLACE_EXISTING)) after_close = GetLastError();
    printf("os.replace onto an open file: error %lu; of an open file: error %lu; once closed: error %lu\n",
           (unsigned long)onto_open_target, (unsigned long)of_open_source, (unsigned long)after_close);
    if (!onto_open_target || !of_open_source || after_close)
        FAIL("MoveFileExW over open files: %lu, %lu, %lu", (unsigned long)onto_open_target,
             (unsigned long)of_open_source, (unsigned long)after_close);
    fprintf(json, "  \"replace_open_files\": {\"onto_open_target\": %lu, \"of_open_source\": %lu, "
                  "\"after_close\": %lu},\n",
            (unsigned long)onto_open_target, (unsigned long)of_open_source, (unsigned long)after_close);
    free(wsrc);
    free(wdst);
    remove(dst);
#else
    (void)dir;
    fprintf(json, "  \"replace_open_files\": null,\n");
#endif
}

int main(int argc, char **argv)
{
    char path[4096];
    FILE *json;
    if (argc < 5) {
        fprintf(stderr, "usage: %s <cfg> <weights> <out_dir> <image>...\n", argv[0]);
        return 2;
    }
    if (pdn_abi_version() != PDN_ABI_VERSION) {
        fprintf(stderr, "FAIL: the DLL has ABI %d, this program %d\n", pdn_abi_version(), PDN_ABI_VERSION);
        return 1;
    }
    printf("build: %s\n", pdn_build_info());
    snprintf(path, sizeof path, "%s/results.json", argv[3]);
    json = fopen(path, "w");
    if (!json) {
        fprintf(stderr, "FAIL: cannot write %s\n", path);
        return 1;
    }
    fprintf(json, "{\n  \"build_info\": %s,\n", pdn_build_info());
    bad_inputs(json, argv[1], argv[2], argv[3]);
    seeded_weights(json, argv[1], argv[3]);
    detections(json, argv[1], argv[2], argv[3], argc - 4, argv + 4);
    non_ascii_paths(json, argv[1], argv[2], argv[3], argv[4]);
    replace_open_files(json, argv[3]);
    fprintf(json, "  \"failures\": %d\n}\n", failures);
    fclose(json);
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
