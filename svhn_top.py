"""Topological densification vs neural collapse on SVHN-250 (Hofer et al.'s protocol).

CNN-13 costs seconds per step on a CPU: use a GPU for the full study.

    python svhn_top.py                                    # the full study: splits 0-9 × vanilla, hofer, sliding
    python svhn_top.py --EPOCHS=2 --SPLITS=0             # a first look
    python svhn_top.py --REGULARIZERS=hofer --LRS=0.01,0.03 --HOFER_BETAS=0.5,1 --SPLITS=10-19 --OUT_DIR=results/svhn-250-sweep

Any constant below can be overridden as --NAME=value. Running again resumes unfinished runs.
"""
# data
DATASET = "SVHN"                # SVHN, or MNIST, FashionMNIST, KMNIST
DATA_ROOT = ""                  # folder holding train_32x32.mat, test_32x32.mat; "" → $DATA_ROOT, else data/ next to this file
DOWNLOAD = True                 # let torchvision fetch missing files (files already present are used as they are)
VERIFY_DATA = True              # refuse data files whose MD5 is not the genuine dataset's (False: other data on purpose)
TRAIN_SIZE = 250                # labelled training images; Hofer et al.'s splits exist for 100…4000
SPLITS = list(range(10))        # splits to run (10-19 are held out for choosing hofer's β)
AUGMENT = True                  # random-crop augmentation, as published for SVHN
CROP_PADDING = 2                # pixels of translation when AUGMENT
# model and optimiser
MODEL = "CNN13"                 # CNN13 or SimpleCNN_MNIST (models.py)
EPOCHS = 310                    # training epochs
LRS = [0.03]                    # initial learning rates (several = a sweep); cosine-annealed to 0 per epoch
MOMENTUM = 0.9                  # SGD momentum
NESTEROV = False                # Nesterov momentum (Hofer et al.'s released code uses it; the original study did not)
ETF_CLASSIFIER = False          # fix the last layer to a simplex ETF with one learned scale (models.ETFClassifier)
WEIGHT_DECAY = 1e-3             # the paper's text; the original code had 10e-3 = 0.01
GROUPS_PER_BATCH = 8            # groups per batch
SAMPLES_PER_GROUP = 16          # same-class images per group: the anchor + 15 draws with replacement
# regularisers
REGULARIZERS = ["vanilla", "hofer", "sliding"]  # also center_sliding, sliding_fixed_beta, ramp, center, floor, ceiling,
                                                # center_radius, terminal_sliding (common/schedules.py)
METRIC = "l2"                   # distance of the persistence: l1, l2 or linf
LAMBDAS = [0.1]                 # weight λ of the penalty (hofer), λmax of the ramped ones (several = a sweep)
HOFER_BETAS = [0.5]             # hofer's constant β (several = a sweep)
SLIDING_BETA0S = [1.0]          # sliding: β = β0·√(1 − e/E) and λ = λmax·e/E in epoch e = 1…E (several = a sweep);
                                # the fixed β of sliding_fixed_beta, floor, ceiling and the radius r of center_radius
# runs, logs, output
SEED = 0                        # run seed = 1000·SEED + split, shared by all regularisers of a split
EVAL_EPOCHS = 40                # evaluate test accuracy + collapse at ~this many log-spaced epochs, plus the last
EVAL_TEST_EVERY_EPOCH = False   # test accuracy every epoch (costs about as much as training on a CPU)
EVAL_BATCH = 2000               # test images per forward pass
VAL_SIZE = 10_000               # training images outside every split, scored as val_acc to choose hyperparameters by
CKPT_EVERY = 10                 # checkpoint every this many epochs (and at the end)
OUT_DIR = ""                    # "" → results/<dataset>-<size>/
DEVICE = ""                     # "" → cuda if available, else cpu
DETERMINISTIC = True            # deterministic kernels, no TF32: repeatable CUDA runs (False: TF32 and cuDNN autotuning)
EXECUTOR = "local"              # local: runs one after the other in this process; ray: Ray tasks (README, "Ray")
RAY_ADDRESS = ""                # with ray: "" starts a fresh local instance; auto or ray://host:port joins a cluster
CPUS_PER_RUN = 1                # with ray: CPUs (and torch threads, in place of THREADS) of each run's task
GPUS_PER_RUN = 0.25             # with ray: the fraction of a GPU each run requests, where Ray sees GPUs
THREADS = 0                     # CPU threads (0 = torch's default); use 1 per process when running several
PROGRESS = True                 # progress bars
REPORT_ONLY = False             # only regenerate table.md and the figures from the logs in OUT_DIR
PAIR_WITH = []                  # other results folders whose runs the report pairs with these by (split, seed)

if __name__ == "__main__":
    from training import experiment
    raise SystemExit(experiment.main({k: v for k, v in globals().items() if k.isupper()}))
