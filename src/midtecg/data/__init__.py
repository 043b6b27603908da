"""PTB-XL and generic WFDB data: leads, labels, demographics, heart rate, readers and the prepared cache.

Public API (imported lazily, so ``import midtecg.data.errors`` stays cheap):

- ``leads``: ``WFDB_LEADS``, ``MODEL_LEADS``, ``to_model_leads``, ``to_twelve_leads``, ``limb_leads``, ``wfdb_order``
- ``signals``: ``check_signals`` (what a signal array is; integers refused)
- ``wfdb_record``: ``read_wfdb_signal`` (the one WFDB reader), ``UNIT_TO_MV``
- ``errors``: ``DataError``, ``DataWarning``, ``MissingRecordError``
- ``labels``: ``SCP_CODES``, ``LABEL_SETS``, ``labels_to_vector``, ``resolve_label``, ``aggregate_labels`` ...
- ``demographics``: ``clean_demographics``, ``age_bin_onehot``, ``sex_onehot`` ...
- ``heart_rate``: ``detect_r_peaks``, ``heart_rate_bpm``
- ``ptbxl``: ``load_ptbxl_metadata``, ``read_ptbxl_record``, ``DEFAULT_SPLITS``, ``resolve_folds``
- ``wfdb_folder``: ``load_folder_metadata``, ``read_folder_record``
- ``cache``: ``prepare``, ``load_prepared``, ``PreparedData``
- ``scaling``: ``SCALINGS``, ``lead_scale`` (per-lead data scaling for training)
"""

from __future__ import annotations

from midtecg.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "leads": (
            "WFDB_LEADS",
            "MODEL_LEADS",
            "to_model_leads",
            "to_twelve_leads",
            "canonical_lead_name",
            "limb_leads",
            "wfdb_order",
        ),
        "signals": ("check_signals",),
        "wfdb_record": ("read_wfdb_signal", "UNIT_TO_MV"),
        "errors": ("DataError", "DataWarning", "MissingRecordError"),
        "labels": (
            "SCP_CODES",
            "NUM_LABELS",
            "LABEL_SETS",
            "SUPERCLASSES",
            "labels_to_vector",
            "labels_matrix",
            "vector_to_labels",
            "resolve_label",
            "code_to_index",
            "index_to_code",
            "code_to_description",
            "label_set_codes",
            "aggregate_labels",
            "parse_scp_codes",
        ),
        "demographics": (
            "clean_demographics",
            "demographics_mask",
            "age_bin_onehot",
            "sex_onehot",
            "parse_sex",
            "CONDITION_RANGES",
            "check_plausible",
        ),
        "heart_rate": ("detect_r_peaks", "heart_rate_bpm"),
        "folds": ("DEFAULT_SPLITS", "FOLDS"),
        "ptbxl": ("load_ptbxl_metadata", "read_ptbxl_record", "resolve_folds"),
        "wfdb_folder": ("load_folder_metadata", "read_folder_record"),
        "cache": ("prepare", "load_prepared", "PreparedData"),
        "scaling": ("SCALINGS", "lead_scale"),
    },
)
