/* maec plot: the loss and the learning rate of training runs against the step, as an SVG
 * picture (two panels sharing the step axis), from the metrics files `maec train` writes: one
 * JSON object of numbers per line (docs/training.md). */
#include "maec/alloc.h"
#include "maec/cli.h"
#include "maec/error.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PLOT_MAX_FILES 8
#define PLOT_KEY_MAX 64
#define PLOT_LINE_MAX 4096

/* Layout in SVG user units (pixels). */
#define PLOT_WIDTH 760
#define PLOT_LEFT 80   /* room for the y tick labels and the axis title */
#define PLOT_RIGHT 24
#define PLOT_TOP 36
#define PLOT_PANEL 240 /* height of each panel's frame */
#define PLOT_GAP 64    /* between the panels: the upper one's x tick labels */
#define PLOT_BOTTOM 56
#define PLOT_TICKS 6   /* about this many ticks per axis */
#define PLOT_MAX_TICKS 16
#define PLOT_MARKERS_UP_TO 60 /* series this short also get a dot at every point */

typedef struct Series {
    const char *path;
    size_t n, cap;
    double *step, *loss, *lr;
} Series;

typedef struct PlotArgs {
    const char *files[PLOT_MAX_FILES];
    size_t nfiles;
    const char *output;
} PlotArgs;

static const char usage[] =
    "usage: maec plot METRICS.jsonl [MORE.jsonl ...] -o CURVES.svg\n"
    "\n"
    "Draws the loss (upper panel) and the learning rate (lower panel) against the optimizer step\n"
    "from the metrics files maec train writes (log.metrics, inside checkpoint.dir by default), one\n"
    "curve per file, named in the legend. Where a resumed run logged a step again, its later\n"
    "lines replace the earlier ones from that step on. The picture is SVG: browsers show it, and\n"
    "rsvg-convert or ImageMagick turn it into PNG.\n"
    "\n"
    "  -o, --output PATH  the SVG file (required)\n"
    "  -h, --help         this text\n";

static int parse_args(int argc, char **argv, PlotArgs *a)
{
    *a = (PlotArgs){0};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            fputs(usage, stdout);
            exit(0);
        } else if ((!strcmp(arg, "-o") || !strcmp(arg, "--output")) && i + 1 < argc) {
            a->output = argv[++i];
        } else if (arg[0] == '-') {
            return cli_usage_error("plot", "unknown option or missing value: '%s'", arg);
        } else if (a->nfiles == PLOT_MAX_FILES) {
            return cli_usage_error("plot", "at most %d metrics files in one picture", PLOT_MAX_FILES);
        } else {
            a->files[a->nfiles++] = arg;
        }
    }
    if (!a->nfiles || !a->output)
        return cli_usage_error("plot", "expected METRICS.jsonl [MORE.jsonl ...] -o CURVES.svg");
    size_t len = strlen(a->output);
    if (len < 4 || strcasecmp(a->output + len - 4, ".svg"))
        return cli_usage_error("plot", "'%s': the picture is SVG, so the output name must end in .svg "
                               "(for PNG: rsvg-convert CURVES.svg -o CURVES.png)", a->output);
    return 0;
}

/* ---- reading metrics lines ---- */

typedef struct LineParser {
    const char *text, *p;
    const char *path;
    long line;
    MaecError *err;
} LineParser;

static int parse_error(LineParser *lp, const char *what)
{
    return error_set(lp->err, "%s:%ld:%ld: %s (each line of a metrics file is one JSON object of numbers, "
                     "as maec train writes it)", lp->path, lp->line, (long)(lp->p - lp->text) + 1, what);
}

static int expect(LineParser *lp, char c, const char *what)
{
    if (*lp->p != c)
        return parse_error(lp, what);
    lp->p++;
    return 0;
}

static void skip_space(LineParser *lp)
{
    while (*lp->p == ' ' || *lp->p == '\t' || *lp->p == '\r' || *lp->p == '\n')
        lp->p++;
}

/* A JSON string at lp->p; its text into out (an escaped character as itself, cut to size). */
static int parse_string(LineParser *lp, char *out, size_t size)
{
    if (*lp->p != '"')
        return parse_error(lp, "expected a quoted key");
    size_t n = 0;
    for (lp->p++; *lp->p != '"'; lp->p++) {
        if (*lp->p == '\0')
            return parse_error(lp, "unterminated string");
        if (*lp->p == '\\' && lp->p[1])
            lp->p++;
        if (n + 1 < size)
            out[n++] = *lp->p;
    }
    lp->p++;
    out[n] = '\0';
    return 0;
}

/* A value: a number into *value (NAN for a string, true, false or null, which are skipped). */
static int parse_value(LineParser *lp, double *value)
{
    static const char *const words[] = {"true", "false", "null"};
    char ignored[PLOT_KEY_MAX];
    *value = NAN;
    if (*lp->p == '"')
        return parse_string(lp, ignored, sizeof ignored);
    for (int i = 0; i < 3; i++)
        if (!strncmp(lp->p, words[i], strlen(words[i]))) {
            lp->p += strlen(words[i]);
            return 0;
        }
    char *end = NULL;
    if (*lp->p == '-' || (*lp->p >= '0' && *lp->p <= '9'))
        *value = strtod(lp->p, &end);
    if (!end || end == lp->p)
        return parse_error(lp, "expected a value");
    lp->p = end;
    return 0;
}

typedef struct MetricsRow {
    double step, loss, lr;
} MetricsRow;

static void store_value(MetricsRow *row, const char *key, double value)
{
    if (!strcmp(key, "step"))
        row->step = value;
    else if (!strcmp(key, "loss"))
        row->loss = value;
    else if (!strcmp(key, "lr"))
        row->lr = value;
}

static int parse_members(LineParser *lp, MetricsRow *row)
{
    for (;;) {
        char key[PLOT_KEY_MAX];
        double value;
        skip_space(lp);
        if (parse_string(lp, key, sizeof key))
            return -1;
        skip_space(lp);
        if (expect(lp, ':', "expected ':' after the key"))
            return -1;
        skip_space(lp);
        if (parse_value(lp, &value))
            return -1;
        store_value(row, key, value);
        skip_space(lp);
        if (*lp->p == '}') {
            lp->p++;
            return 0;
        }
        if (expect(lp, ',', "expected ',' or '}'"))
            return -1;
    }
}

/* One line: 1 with the row, 0 for a blank line, -1 on error. */
static int parse_line(LineParser *lp, MetricsRow *row)
{
    *row = (MetricsRow){NAN, NAN, NAN};
    lp->p = lp->text;
    skip_space(lp);
    if (*lp->p == '\0')
        return 0;
    if (expect(lp, '{', "expected '{'") || parse_members(lp, row))
        return -1;
    skip_space(lp);
    if (*lp->p != '\0')
        return parse_error(lp, "text after the object");
    static const char *const required[] = {"step", "loss", "lr"};
    const double values[] = {row->step, row->loss, row->lr};
    for (int i = 0; i < 3; i++)
        if (!isfinite(values[i]))
            return error_set(lp->err, "%s:%ld: no finite number for \"%s\" (maec train writes step, loss and "
                             "lr on every line)", lp->path, lp->line, required[i]);
    return 1;
}

/* A resumed run logs again the steps after its checkpoint: the later lines win. */
static void series_add(Series *s, const MetricsRow *row)
{
    while (s->n && s->step[s->n - 1] >= row->step)
        s->n--;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->step = xrealloc(s->step, s->cap * sizeof(double), "metrics");
        s->loss = xrealloc(s->loss, s->cap * sizeof(double), "metrics");
        s->lr = xrealloc(s->lr, s->cap * sizeof(double), "metrics");
    }
    s->step[s->n] = row->step, s->loss[s->n] = row->loss, s->lr[s->n] = row->lr;
    s->n++;
}

static int read_lines(FILE *f, Series *s, MaecError *err)
{
    char text[PLOT_LINE_MAX];
    LineParser lp = {.text = text, .path = s->path, .err = err};
    while (fgets(text, sizeof text, f)) {
        lp.line++;
        if (!strchr(text, '\n') && !feof(f))
            return error_set(err, "%s:%ld: line longer than %d characters: not a metrics file", s->path,
                             lp.line, PLOT_LINE_MAX - 1);
        MetricsRow row;
        int got = parse_line(&lp, &row);
        if (got < 0)
            return -1;
        if (got)
            series_add(s, &row);
    }
    if (ferror(f))
        return error_set(err, "%s: read error after line %ld: %s", s->path, lp.line, strerror(errno));
    return 0;
}

static int series_read(Series *s, const char *path, MaecError *err)
{
    *s = (Series){.path = path};
    FILE *f = fopen(path, "r");
    if (!f)
        return error_set(err, "cannot open %s: %s (maec train writes it as log.metrics, inside "
                         "checkpoint.dir by default)", path, strerror(errno));
    int rc = read_lines(f, s, err);
    fclose(f);
    if (rc == 0 && s->n == 0)
        return error_set(err, "%s holds no metrics lines: did the run reach log.every_steps?", path);
    return rc;
}

static void series_free(Series *s)
{
    free(s->step), free(s->loss), free(s->lr);
}

/* ---- drawing ---- */

typedef struct Range {
    double lo, hi;
} Range;

typedef enum Column { COLUMN_STEP, COLUMN_LOSS, COLUMN_LR } Column;

typedef struct Panel {
    const char *title, *label, *css_class;
    int top; /* of the frame */
    Range x, y;
    Column column; /* what it draws against the step */
} Panel;

static const char *const colours[PLOT_MAX_FILES] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                                    "#9467bd", "#8c564b", "#e377c2", "#17becf"};

static const double *series_column(const Series *s, Column column)
{
    return column == COLUMN_LOSS ? s->loss : column == COLUMN_LR ? s->lr : s->step;
}

static Range data_range(const Series *series, size_t nseries, Column column)
{
    Range r = {INFINITY, -INFINITY};
    for (size_t i = 0; i < nseries; i++) {
        const double *v = series_column(&series[i], column);
        for (size_t k = 0; k < series[i].n; k++)
            r.lo = fmin(r.lo, v[k]), r.hi = fmax(r.hi, v[k]);
    }
    double pad = r.hi > r.lo ? 0.05 * (r.hi - r.lo) : fabs(r.lo) > 0 ? 0.1 * fabs(r.lo) : 1.0;
    return (Range){r.lo - pad, r.hi + pad};
}

/* 1, 2 or 5 times a power of ten, giving about PLOT_TICKS ticks over the range. */
static double tick_spacing(Range r)
{
    double raw = (r.hi - r.lo) / PLOT_TICKS, magnitude = pow(10, floor(log10(raw))), f = raw / magnitude;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * magnitude;
}

static double to_x(const Panel *p, double v)
{
    return PLOT_LEFT + (v - p->x.lo) / (p->x.hi - p->x.lo) * (PLOT_WIDTH - PLOT_LEFT - PLOT_RIGHT);
}

static double to_y(const Panel *p, double v)
{
    return p->top + PLOT_PANEL - (v - p->y.lo) / (p->y.hi - p->y.lo) * PLOT_PANEL;
}

static void xml_escaped(FILE *out, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*s, out);
        }
}

typedef struct Ticks {
    size_t n;
    double value[PLOT_MAX_TICKS];
    char label[PLOT_MAX_TICKS][32];
} Ticks;

/* The multiples of spacing in r, each computed rather than summed so that 0 comes out as 0
 * (+ 0.0 turns -0 into 0), labelled with the digits the spacing needs: all in fixed notation, or
 * all in exponent notation where values are very small or large (learning rates: 2.0e-05). */
static void make_ticks(Range r, double spacing, Ticks *t)
{
    t->n = 0;
    for (double k = ceil(r.lo / spacing); k * spacing <= r.hi && t->n < PLOT_MAX_TICKS; k++)
        t->value[t->n++] = k * spacing + 0.0;
    double largest = t->n ? fmax(fabs(t->value[0]), fabs(t->value[t->n - 1])) : 0;
    int spacing_exponent = (int)floor(log10(spacing));
    bool exponent_form = largest > 0 && (largest < 1e-3 || largest >= 1e6);
    int digits = exponent_form ? (int)floor(log10(largest)) - spacing_exponent : -spacing_exponent;
    for (size_t i = 0; i < t->n; i++)
        snprintf(t->label[i], sizeof t->label[i], exponent_form && t->value[i] != 0 ? "%.*e" : "%.*f",
                 digits > 0 ? digits : 0, t->value[i]);
}

static void draw_ticks(FILE *out, const Panel *p)
{
    const int right = PLOT_WIDTH - PLOT_RIGHT, bottom = p->top + PLOT_PANEL;
    Ticks t;
    make_ticks(p->x, fmax(1.0, tick_spacing(p->x)), &t); /* steps are whole */
    for (size_t i = 0; i < t.n; i++) {
        double x = to_x(p, t.value[i]);
        fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", x, p->top, x, bottom);
        fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x, bottom + 18, t.label[i]);
    }
    make_ticks(p->y, tick_spacing(p->y), &t);
    for (size_t i = 0; i < t.n; i++) {
        double y = to_y(p, t.value[i]);
        fprintf(out, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", PLOT_LEFT, y, right, y);
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", PLOT_LEFT - 6, y + 4, t.label[i]);
    }
}

static void draw_frame(FILE *out, const Panel *p)
{
    const int width = PLOT_WIDTH - PLOT_LEFT - PLOT_RIGHT, mid_y = p->top + PLOT_PANEL / 2;
    draw_ticks(out, p);
    fprintf(out, "<rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>\n", PLOT_LEFT, p->top,
            width, PLOT_PANEL);
    fprintf(out, "<text class=\"title\" x=\"%d\" y=\"%d\">%s</text>\n", PLOT_LEFT, p->top - 10, p->title);
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">step</text>\n", PLOT_LEFT + width / 2,
            p->top + PLOT_PANEL + 38);
    fprintf(out, "<text x=\"20\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 20 %d)\">%s</text>\n",
            mid_y, mid_y, p->label);
}

static void draw_series(FILE *out, const Panel *p, const Series *s, const char *colour)
{
    const double *v = series_column(s, p->column);
    fprintf(out, "<polyline class=\"%s\" stroke=\"%s\" points=\"", p->css_class, colour);
    for (size_t k = 0; k < s->n; k++)
        fprintf(out, "%s%.2f,%.2f", k ? " " : "", to_x(p, s->step[k]), to_y(p, v[k]));
    fputs("\"/>\n", out);
    for (size_t k = 0; s->n <= PLOT_MARKERS_UP_TO && k < s->n; k++)
        fprintf(out, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.5\" fill=\"%s\"/>\n", to_x(p, s->step[k]),
                to_y(p, v[k]), colour);
}

/* Inside the upper panel's top right corner: a line of each file's colour and its name. */
static void draw_legend(FILE *out, const Panel *p, const Series *series, size_t nseries)
{
    const int x = PLOT_WIDTH - PLOT_RIGHT - 12;
    for (size_t i = 0; i < nseries; i++) {
        int y = p->top + 18 + 18 * (int)i;
        fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>\n", x - 24,
                y - 4, x, y - 4, colours[i]);
        fprintf(out, "<text class=\"legend\" x=\"%d\" y=\"%d\" text-anchor=\"end\">", x - 30, y);
        xml_escaped(out, series[i].path);
        fputs("</text>\n", out);
    }
}

static void write_svg(FILE *out, const Series *series, size_t nseries)
{
    Range steps = data_range(series, nseries, COLUMN_STEP);
    Panel panels[2] = {
        {"Training loss", "loss", "loss", PLOT_TOP, steps, data_range(series, nseries, COLUMN_LOSS), COLUMN_LOSS},
        {"Learning rate", "learning rate", "lr", PLOT_TOP + PLOT_PANEL + PLOT_GAP, steps,
         data_range(series, nseries, COLUMN_LR), COLUMN_LR},
    };
    const int height = PLOT_TOP + 2 * PLOT_PANEL + PLOT_GAP + PLOT_BOTTOM;
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "font-family=\"sans-serif\" font-size=\"12\">\n"
                 "<style>.grid{stroke:#e0e0e0} .frame{fill:none;stroke:#333} .title{font-size:14px;"
                 "font-weight:bold} polyline{fill:none;stroke-width:1.5}</style>\n"
                 "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            PLOT_WIDTH, height, PLOT_WIDTH, height);
    for (int k = 0; k < 2; k++) {
        draw_frame(out, &panels[k]);
        for (size_t i = 0; i < nseries; i++)
            draw_series(out, &panels[k], &series[i], colours[i]);
    }
    draw_legend(out, &panels[0], series, nseries);
    fputs("</svg>\n", out);
}

static int write_picture(const char *path, const Series *series, size_t nseries, MaecError *err)
{
    FILE *out = fopen(path, "w");
    if (!out)
        return error_set(err, "cannot write %s: %s", path, strerror(errno));
    write_svg(out, series, nseries);
    if (ferror(out) | fclose(out))
        return error_set(err, "writing %s failed: %s", path, strerror(errno));
    return 0;
}

int cli_plot(int argc, char **argv)
{
    PlotArgs a;
    if (parse_args(argc, argv, &a))
        return 2;
    Series series[PLOT_MAX_FILES] = {{0}};
    MaecError err = {{0}};
    int rc = 0;
    for (size_t i = 0; i < a.nfiles && !rc; i++)
        rc = series_read(&series[i], a.files[i], &err);
    if (!rc)
        rc = write_picture(a.output, series, a.nfiles, &err);
    for (size_t i = 0; i < a.nfiles; i++)
        series_free(&series[i]);
    if (rc) {
        fprintf(stderr, "maec plot: error: %s\n", err.msg);
        return 1;
    }
    printf("plot: wrote %s (%zu file%s)\n", a.output, a.nfiles, a.nfiles == 1 ? "" : "s");
    return 0;
}
