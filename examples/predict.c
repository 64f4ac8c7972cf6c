/*
 * predict.c: lipophilicity predictions from C through lipo's C API.
 *
 *   predict MODEL.lipo [SMILES ...]      (SMILES from standard input when none are given)
 *
 * Prints "SMILES<TAB>prediction" per molecule; a molecule that fails prints the library's
 * message on standard error and makes the exit status 1.
 *
 * Build: cc predict.c $(pkg-config --cflags --libs lipo) -o predict
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lipo.h"

static int predict_one(const LipoModel *model, const char *smiles) {
    double value = 0.0;
    LipoStatus status = lipo_predict(model, smiles, &value);
    if (status != LIPO_STATUS_OK) {
        fprintf(stderr, "%s\terror (%s): %s\n", smiles, lipo_status_name(status), lipo_last_error());
        return 1;
    }
    printf("%s\t%.6f\n", smiles, value);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.lipo [SMILES ...]\n", argv[0]);
        return 2;
    }
    if (lipo_abi_version() != LIPO_ABI_VERSION) {
        fprintf(stderr, "liblipo has ABI %u but this program was built for %u\n",
                lipo_abi_version(), (unsigned)LIPO_ABI_VERSION);
        return 2;
    }
    LipoModel *model = NULL;
    if (lipo_model_open(argv[1], &model) != LIPO_STATUS_OK) {
        fprintf(stderr, "cannot open %s: %s\n", argv[1], lipo_last_error());
        return 2;
    }
    int failed = 0;
    if (argc > 2) {
        for (int i = 2; i < argc; i++) failed |= predict_one(model, argv[i]);
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
