"""A run dir's layout, spelled once: the names of the files and folders every module reads or writes there.

    <run dir>/resolved_config.yaml   every value the run used, resolved
    <run dir>/run_info.json          command, versions, git commit, resumes
    <run dir>/error.txt              why a run (a sweep job) failed
    <run dir>/runs/<name>/           TensorBoard events (train, completions, reward_model)
    <run dir>/completions/           TRL's sampled completions (parquet)
    <run dir>/checkpoint-<step>/     Trainer checkpoints (resume from them)
    <run dir>/final/                 the trained adapter (or full model) with its tokenizer
    <run dir>/merged/                the adapter merged into the base (save_merged_model=true)
    <run dir>/eval/                  base vs trained (comparison.json, summary.md, ...)
    <run dir>/pairs.jsonl, answers.jsonl, rm_eval.json, reward_model/   a verifier run (python -m grpo.train_rm)
"""

RESOLVED_CONFIG = "resolved_config.yaml"
RUN_INFO = "run_info.json"
ERROR_FILE = "error.txt"
TENSORBOARD_DIR = "runs"
COMPLETIONS_DIR = "completions"
CHECKPOINT_PREFIX = "checkpoint-"
FINAL_DIR = "final"
MERGED_DIR = "merged"
EVAL_DIR = "eval"
COMPARISON_FILE = "comparison.json"

PAIRS_FILE = "pairs.jsonl"
ANSWERS_FILE = "answers.jsonl"
RM_EVAL_FILE = "rm_eval.json"
REWARD_MODEL_DIR = "reward_model"
