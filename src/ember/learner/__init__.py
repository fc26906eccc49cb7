"""``ember.learner``: fastai's high-level training API over ember's training engine.

    from ember.learner import Learner, DataLoaders, accuracy
    dls = DataLoaders.from_arrays(x_train, y_train, valid_pct=0.2, bs=64)
    learn = Learner(dls, net, loss_func=F.cross_entropy, metrics=accuracy)
    learn.lr_find()                       # SuggestedLRs(valley=...)
    learn.fit_one_cycle(3, lr_max=1e-3)
    learn.recorder.plot_loss()
"""
from .callbacks import (CSVLogger, EarlyStoppingCallback, ProgressCallback, SaveModelCallback,
                        TrackerCallback, TrainEvalCallback)
from .data import DataLoaders
from .learner import (Learner, default_split, even_mults, norm_bias_params, params,
                      trainable_params)
from .losses import (BaseLoss, BCEWithLogitsLossFlat, CrossEntropyLossFlat, L1LossFlat,
                     MSELossFlat)
from .lr_find import LRFinder, minimum, slide, steep, valley
from .metrics import (AccumMetric, ActivationType, APScoreBinary, AvgLoss, AvgMetric,
                      AvgSmoothLoss, BalancedAccuracy, ExplainedVariance, F1Score,
                      F1ScoreMulti, FBeta, FBetaMulti, MatthewsCorrCoef, Metric, Precision,
                      PrecisionMulti, R2Score, Recall, RecallMulti, RocAuc, RocAucBinary,
                      RocAucMulti, ValueMetric, accuracy, accuracy_multi, error_rate,
                      exp_rmspe, flatten_check, mae, mk_metric, mse, msle, rmse,
                      skm_to_fastai, top_k_accuracy)
from .optimizers import SGD, Adam
from .recorder import Recorder
from .schedule import (ParamScheduler, SchedCos, SchedExp, SchedLin, SchedNo, SchedPoly,
                       combine_scheds, combined_cos)
from ..train.events import (Callback, CancelBatchException, CancelEpochException,
                            CancelFitException, CancelTrainException, CancelValidException)

__all__ = ["Learner", "DataLoaders", "Callback", "TrainEvalCallback", "ProgressCallback",
           "TrackerCallback", "EarlyStoppingCallback", "SaveModelCallback", "CSVLogger",
           "Recorder", "ParamScheduler", "LRFinder", "SchedCos", "SchedLin", "SchedExp",
           "SchedNo", "SchedPoly", "combine_scheds", "combined_cos", "valley", "slide",
           "minimum", "steep", "Adam", "SGD", "trainable_params", "params", "default_split",
           "norm_bias_params", "even_mults", "BaseLoss", "CrossEntropyLossFlat",
           "BCEWithLogitsLossFlat", "MSELossFlat", "L1LossFlat", "Metric", "AvgMetric",
           "AccumMetric", "AvgLoss", "AvgSmoothLoss", "ValueMetric", "ActivationType",
           "mk_metric", "flatten_check", "skm_to_fastai", "accuracy", "error_rate",
           "top_k_accuracy", "accuracy_multi", "mse", "mae", "msle", "rmse", "exp_rmspe",
           "APScoreBinary", "BalancedAccuracy", "MatthewsCorrCoef", "F1Score", "FBeta",
           "Precision", "Recall", "RocAuc", "RocAucBinary", "R2Score", "ExplainedVariance",
           "F1ScoreMulti", "FBetaMulti", "PrecisionMulti", "RecallMulti", "RocAucMulti",
           "CancelBatchException", "CancelEpochException", "CancelFitException",
           "CancelTrainException", "CancelValidException"]
