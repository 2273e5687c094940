"""The torch NAS side of the joint search: an OFA-style MobileNetV2 search space with NASA's
hybrid operators (conv / shift / adder), a weight-sharing supernet trained on an offline
proxy task, and an accuracy predictor.

Modules (only :mod:`.space` is imported here; it does not need torch):

* :mod:`.space` -- :class:`ArchConfig`, :class:`SearchSpace` (sampling, predictor features,
  genome for evolution);
* :mod:`.ops` -- ``ShiftConv2d``, ``AdderConv2d``;
* :mod:`.nets` -- ``deploy_module`` (ImageNet-scale network of a config, for layer shapes);
* :mod:`.supernet` -- ``SuperNet``, ``extract_subnet`` (proxy scale);
* :mod:`.data` -- ``load_dataset`` (sklearn digits by default, image folders, CIFAR-10);
* :mod:`.train` -- ``train_supernet``, ``evaluate_subnet``;
* :mod:`.predictor` -- ``AccuracyPredictor``, ``kendall_tau``;
* :mod:`.proxy` -- ``build_accuracy_model`` (all of the above in one call).
"""
from naas_tl.nas.space import ArchConfig, SearchSpace, config_from_name

__all__ = ["ArchConfig", "SearchSpace", "config_from_name"]
