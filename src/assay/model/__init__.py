"""A registered model version, shared by the server, monitoring and batch scoring.

- :mod:`~assay.model.loaded`: :class:`LoadedModel` loads a version with its artifact
  verified and scores frames or records (:class:`Prediction`), on the compiled fast
  path (:mod:`~assay.model.fastpath`, :mod:`~assay.model.fastblend`) when it has one;
- :mod:`~assay.model.validation`: request records checked and coerced against the
  model's schema (:func:`validate_records`);
- :mod:`~assay.model.deployments`: how a challenger meets traffic (shadow or canary);
- :mod:`~assay.model.predictions`: the prediction log's read side
  (:func:`read_predictions`); the server writes it (:mod:`assay.serve.log`).

Importing this package is cheap; each module loads when it is imported by name.
"""

from __future__ import annotations
