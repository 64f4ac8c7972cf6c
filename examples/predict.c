/*
 * predict.c: lipophilicity predictions from C through lipo's C API.
 *
 *   predict [MODEL.lipo] [SMILES ...]    (SMILES from standard input when none are given)
 *
 * The first argument is the model when it names an existing file or folder or ends in .lipo;
 * otherwise the default bundle is used (LIPO_DEFAULT_BUNDLE, else lipo's shipped predictor).
 * Prints "SMILES<TAB>prediction" per molecule, and for an ensemble bundle
 * "SMILES<TAB>prediction ± sd<TAB>in domain" (or "out of domain"); a molecule that fails
 * prints the library's message on standard error and makes the exit status 1.
 *
 * Build: cc predict.c $(pkg-config --cflags --libs lipo) -o predict
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lipo.h"

static int predict_one(const LipoModel *model, const char *smiles) {
    LipoPrediction p;
    LipoStatus status = lipo_predict_detail(model, smiles, &p);
    if (status != LIPO_STATUS_OK) {
        fprintf(stderr, "%s\terror (%s): %s\n", smiles, lipo_status_name(status), lipo_last_error());
        return 1;
    }
    if (p.in_domain < 0) /* a single model: no uncertainty */
        printf("%s\t%.6f\n", smiles, p.value);
    else
        printf("%s\t%.6f ± %.6f\t%s\n", smiles, p.value, p.sd,
               p.in_domain ? "in domain" : "out of domain");
    return 0;
}

static int is_model(const char *arg) {
    struct stat st;
    size_t n = strlen(arg);
    return stat(arg, &st) == 0 || (n >= 5 && strcmp(arg + n - 5, ".lipo") == 0);
}

int main(int argc, char **argv) {
    if (lipo_abi_version() != LIPO_ABI_VERSION) {
        fprintf(stderr, "liblipo has ABI %u but this program was built for %u\n",
                lipo_abi_version(), (unsigned)LIPO_ABI_VERSION);
        return 2;
    }
    int first = 1;
    char *path = NULL;
    if (argc > 1 && is_model(argv[1])) {
        first = 2;
    } else if (lipo_default_model_path(&path) != LIPO_STATUS_OK) {
        fprintf(stderr, "no model given and no default: %s\n", lipo_last_error());
        return 2;
    }
    const char *name = path ? path : argv[1];
    LipoModel *model = NULL;
    LipoStatus status = lipo_model_open(name, &model);
    if (status != LIPO_STATUS_OK) fprintf(stderr, "cannot open %s: %s\n", name, lipo_last_error());
    lipo_string_free(path);
    if (status != LIPO_STATUS_OK) return 2;
    int failed = 0;
    if (argc > first) {
        for (int i = first; i < argc; i++) failed |= predict_one(model, argv[i]);
    } else {
        char line[4096];
        while (fgets(line, sizeof line, stdin)) {
            line[strcspn(line, " \t\r\n")] = '\0';
            if (line[0] != '\0') failed |= predict_one(model, line);
        }
    }
    lipo_model_close(model);
    return failed;
}
