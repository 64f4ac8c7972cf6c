/*
 * train.c: fine-tunes a model through lipo's C API, exports it to ONNX and predicts with it.
 *
 *   train TABLE.csv RUN_DIR [EPOCHS] [CANCEL_AFTER_STEPS]
 *
 * TABLE.csv has a SMILES column and a label column (e.g. "smiles,exp"). The model is a tiny
 * random-init MoLFormer (2 layers x 32), so that the example runs in seconds; give
 * "init": {"model": "models/lipo-small"} instead to fine-tune lipo's pre-trained model.
 * With CANCEL_AFTER_STEPS, the progress callback cancels training after that many steps;
 * running the same command again resumes from the checkpoint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lipo.h"

struct progress {
    long steps;
    long cancel_after;
};

/* Called for every training event (JSON); returns non-zero to cancel. */
static int on_progress(const char *event_json, void *user_data) {
    struct progress *p = user_data;
    if (strstr(event_json, "\"event\":\"step\"")) {
        p->steps++;
        if (p->cancel_after > 0 && p->steps >= p->cancel_after) return 1;
    } else {
        printf("progress: %s\n", event_json);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TABLE.csv RUN_DIR [EPOCHS] [CANCEL_AFTER_STEPS]\n", argv[0]);
        return 2;
    }
    int epochs = argc > 3 ? atoi(argv[3]) : 3;
    struct progress p = {0, argc > 4 ? atol(argv[4]) : 0};

    char job[4096];
    int len = snprintf(job, sizeof job,
        "{\"command\": \"finetune\", \"out\": \"%s/run\", \"device\": \"cpu\", \"threads\": 1,"
        " \"export\": \"%s/model.lipo\","
        " \"run\": {\"data\": \"%s\","
        "  \"init\": {\"random\": {\"hidden_size\": 32, \"num_hidden_layers\": 2,"
        "   \"num_attention_heads\": 4, \"intermediate_size\": 64, \"num_random_features\": 16}},"
        "  \"train\": {\"epochs\": %d, \"batch_size\": 8, \"lr\": 0.001, \"seed\": 0}}}",
        argv[2], argv[2], argv[1], epochs);
    if (len < 0 || (size_t)len >= sizeof job) {
        fprintf(stderr, "paths too long\n");
        return 2;
    }

    char *report = NULL;
    LipoStatus status = lipo_train(job, on_progress, &p, &report);
    if (status == LIPO_STATUS_CANCELLED) {
        printf("cancelled after %ld steps: %s\n", p.steps, lipo_last_error());
        return 3;
    }
    if (status != LIPO_STATUS_OK) {
        fprintf(stderr, "training failed (%s): %s\n", lipo_status_name(status), lipo_last_error());
        return 1;
    }
    printf("trained in %ld steps; report: %.200s...\n", p.steps, report);
    lipo_string_free(report);

    char bundle[4096];
    snprintf(bundle, sizeof bundle, "%s/model.lipo", argv[2]);
    LipoModel *model = NULL;
    if (lipo_model_open(bundle, &model) != LIPO_STATUS_OK) {
        fprintf(stderr, "cannot open %s: %s\n", bundle, lipo_last_error());
        return 1;
    }
    const char *smiles[] = {"c1ccccc1Cl", "not_a_smiles", "CCO"};
    double values[3];
    LipoStatus statuses[3];
    status = lipo_predict_batch(model, smiles, 3, values, statuses);
    if (status != LIPO_STATUS_OK) {
        fprintf(stderr, "prediction failed: %s\n", lipo_last_error());
        lipo_model_close(model);
        return 1;
    }
    for (int i = 0; i < 3; i++) {
        if (statuses[i] == LIPO_STATUS_OK)
            printf("%s\t%.6f\n", smiles[i], values[i]);
        else
            printf("%s\t%s\n", smiles[i], lipo_status_name(statuses[i]));
    }
    printf("first failure: %s\n", lipo_last_error());
    lipo_model_close(model);
    return 0;
}
