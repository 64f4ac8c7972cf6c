"""Tests of the ctypes binding, run by tests/ffi.rs with:
LIPO_LIBRARY (liblipo.so), LIPO_TEST_BUNDLE (an exported tiny model), LIPO_TEST_EXPECTED
(JSON {smiles: prediction} computed in Rust), LIPO_TEST_ENSEMBLE (an exported tiny ensemble),
LIPO_TEST_ENSEMBLE_EXPECTED (JSON {"info": {members, domain_threshold}, "predictions":
{smiles: [value, sd, domain, in_domain]}} computed in Rust) and LIPO_TEST_TABLE (a small
labelled CSV)."""

import json
import math
import os
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import lipo  # noqa: E402

BUNDLE = os.environ.get("LIPO_TEST_BUNDLE")
EXPECTED = json.loads(os.environ.get("LIPO_TEST_EXPECTED", "{}"))
TABLE = os.environ.get("LIPO_TEST_TABLE")
ENSEMBLE = os.environ.get("LIPO_TEST_ENSEMBLE")
ENSEMBLE_EXPECTED = json.loads(os.environ.get("LIPO_TEST_ENSEMBLE_EXPECTED", "{}"))


@unittest.skipUnless(BUNDLE, "run through tests/ffi.rs (needs LIPO_TEST_BUNDLE)")
class PredictTest(unittest.TestCase):
    def setUp(self):
        self.model = lipo.Model(BUNDLE)

    def tearDown(self):
        self.model.close()

    def test_version_and_info(self):
        self.assertRegex(lipo.version(), r"^\d+\.\d+\.\d+")
        info = self.model.info()
        self.assertEqual(info["task"], "regression")

    def test_predictions_match_rust(self):
        for smiles, want in EXPECTED.items():
            self.assertAlmostEqual(self.model.predict(smiles), want, delta=1e-5)

    def test_bad_smiles_raises_with_the_message(self):
        with self.assertRaises(lipo.LipoError) as cm:
            self.model.predict("not_a_smiles")
        self.assertEqual(cm.exception.status_name, "invalid SMILES")
        self.assertIn("not_a_smiles", str(cm.exception))

    def test_batch_keeps_going_past_a_bad_smiles(self):
        smiles = list(EXPECTED) + ["not_a_smiles"]
        got = self.model.predict_batch(smiles, errors="none")
        self.assertIsNone(got[-1])
        for g, s in zip(got, EXPECTED):
            self.assertAlmostEqual(g, EXPECTED[s], delta=1e-5)
        self.assertTrue(math.isnan(self.model.predict_batch(["not_a_smiles"], errors="nan")[0]))
        with self.assertRaises(lipo.LipoError):
            self.model.predict_batch(smiles)

    def test_nul_bytes_are_refused_not_cut(self):
        with self.assertRaises(lipo.LipoError) as cm:
            self.model.predict("CCO\0junk")
        self.assertEqual(cm.exception.status_name, "invalid SMILES")
        self.assertIn("NUL", str(cm.exception))
        got = self.model.predict_batch(["CCO\0junk", "CCO"], errors="none")
        self.assertIsNone(got[0])
        self.assertIsNotNone(got[1])
        with self.assertRaises(lipo.LipoError):
            lipo.Model(BUNDLE + "\0x")

    def test_single_model_detail_has_no_uncertainty(self):
        for smiles, want in EXPECTED.items():
            p = self.model.predict_detail(smiles)
            self.assertAlmostEqual(p.value, want, delta=1e-5)
            self.assertEqual((p.sd, p.domain, p.in_domain), (None, None, None))
        got = self.model.predict_detail_batch(list(EXPECTED) + ["not_a_smiles"], errors="none")
        self.assertIsNone(got[-1])
        self.assertTrue(all(p.sd is None for p in got[:-1]))
        info = self.model.info()
        for key in ["members", "sd_scale", "domain_threshold", "domain_neighbours",
                    "training_molecules", "out_of_fold_rmse"]:
            self.assertIn(key, info)
            self.assertIsNone(info[key])

    def test_closed_model_and_missing_bundle_raise(self):
        self.model.close()
        with self.assertRaises(lipo.LipoError):
            self.model.predict("CCO")
        with self.assertRaises(lipo.LipoError) as cm:
            lipo.Model("/nonexistent/model.lipo")
        self.assertIn("/nonexistent/model.lipo", str(cm.exception))


@unittest.skipUnless(ENSEMBLE, "run through tests/ffi.rs (needs LIPO_TEST_ENSEMBLE)")
class EnsembleTest(unittest.TestCase):
    def setUp(self):
        self.model = lipo.Model(ENSEMBLE)
        self.expected = ENSEMBLE_EXPECTED["predictions"]
        self.threshold = ENSEMBLE_EXPECTED["info"]["domain_threshold"]

    def tearDown(self):
        self.model.close()

    def assert_prediction(self, got, want, delta=1e-5):
        value, sd, domain, in_domain = want
        self.assertIsInstance(got, lipo.Prediction)
        self.assertAlmostEqual(got.value, value, delta=delta)
        self.assertAlmostEqual(got.sd, sd, delta=delta)
        self.assertAlmostEqual(got.domain, domain, delta=delta)
        self.assertIs(got.in_domain, in_domain)

    def test_detail_matches_rust(self):
        for smiles, want in self.expected.items():
            p = self.model.predict_detail(smiles)
            self.assert_prediction(p, want)
            self.assertGreater(p.sd, 0)
            self.assertEqual(p.in_domain, p.domain <= self.threshold)
            self.assertEqual(self.model.predict(smiles), p.value)

    def test_info_has_the_ensemble_fields(self):
        info = self.model.info()
        self.assertEqual(info["members"], ENSEMBLE_EXPECTED["info"]["members"])
        self.assertEqual(info["domain_threshold"], self.threshold)
        for key in ["sd_scale", "domain_neighbours", "training_molecules", "out_of_fold_rmse"]:
            self.assertGreater(info[key], 0)

    def test_bad_smiles_raises_and_batch_keeps_going(self):
        with self.assertRaises(lipo.LipoError) as cm:
            self.model.predict_detail("C)C(")
        self.assertEqual(cm.exception.status_name, "invalid SMILES")
        self.assertIn("C)C(", str(cm.exception))
        smiles = list(self.expected)
        batch = smiles[:2] + ["not_a_smiles", "CCO\0junk"] + smiles[2:]
        got = self.model.predict_detail_batch(batch, errors="none")
        self.assertIsNone(got[2])
        self.assertIsNone(got[3])
        for g, s in zip(got[:2] + got[4:], smiles):
            self.assert_prediction(g, self.expected[s], delta=1e-4)
        nan = self.model.predict_detail_batch(["not_a_smiles"], errors="nan")[0]
        self.assertTrue(math.isnan(nan.value))
        with self.assertRaises(lipo.LipoError) as cm:
            self.model.predict_detail_batch(batch)
        self.assertIn("not_a_smiles", str(cm.exception))
        with self.assertRaises(lipo.LipoError):
            self.model.predict_detail("CCO\0junk")
        self.assertEqual(self.model.predict_detail_batch([]), [])

    def test_default_bundle(self):
        saved = os.environ.get("LIPO_DEFAULT_BUNDLE")
        try:
            os.environ["LIPO_DEFAULT_BUNDLE"] = ENSEMBLE
            self.assertEqual(lipo.default_model_path(), ENSEMBLE)
            with lipo.Model() as m:
                smiles, want = next(iter(self.expected.items()))
                self.assert_prediction(m.predict_detail(smiles), want)
            del os.environ["LIPO_DEFAULT_BUNDLE"]
            shipped = Path(__file__).resolve().parents[3] / "models" / "logd.lipo" / "model.onnx"
            if not shipped.is_file():
                with self.assertRaises(lipo.LipoError) as cm:
                    lipo.Model()
                self.assertEqual(cm.exception.status_name, "unusable model")
                self.assertIn("LIPO_DEFAULT_BUNDLE", str(cm.exception))
        finally:
            if saved is None:
                os.environ.pop("LIPO_DEFAULT_BUNDLE", None)
            else:
                os.environ["LIPO_DEFAULT_BUNDLE"] = saved


@unittest.skipUnless(TABLE, "run through tests/ffi.rs (needs LIPO_TEST_TABLE)")
class TrainTest(unittest.TestCase):
    def test_train_cancel_resume_export_predict(self):
        with tempfile.TemporaryDirectory() as d:
            job = {
                "command": "finetune",
                "out": f"{d}/run",
                "device": "cpu",
                "threads": 1,
                "export": f"{d}/m.lipo",
                "run": {
                    "data": TABLE,
                    "init": {"random": {"hidden_size": 32, "num_hidden_layers": 2,
                                        "num_attention_heads": 4, "intermediate_size": 64,
                                        "num_random_features": 16}},
                    "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3},
                },
            }
            steps = []

            def stop_after_3(event):
                if event["event"] == "step":
                    steps.append(event["step"])
                return len(steps) < 3

            with self.assertRaises(lipo.LipoError) as cm:
                lipo.train(job, progress=stop_after_3)
            self.assertEqual(cm.exception.status_name, "cancelled")
            report = lipo.train(job)
            self.assertEqual(report["command"], "finetune")
            self.assertEqual(len(report["report"]["history"]), 2)
            with lipo.Model(report["bundle"]) as m:
                self.assertTrue(math.isfinite(m.predict("CCO")))
            with self.assertRaises(lipo.LipoError) as cm:
                lipo.train({"command": "finetune", "out": f"{d}/x", "run": {"data": TABLE}})
            self.assertIn("init", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
