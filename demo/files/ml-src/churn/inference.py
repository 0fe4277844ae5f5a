"""SageMaker scikit-learn serving hooks for the churn model (the demo's stand-in script)."""

import json
import os

import joblib


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(data, model):
    return model.predict_proba(data)[:, 1]


def output_fn(prediction, accept):
    return json.dumps({"churn_probability": prediction.tolist()})
