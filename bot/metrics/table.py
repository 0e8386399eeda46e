"""Which way is better for the metric names ML libraries document. Pure data.

Names are matched after the role and dataset index are taken off (`valid_1-auc` is looked up as
`auc`, see `bot.metrics.names`) and in lower case, except `CASE_SENSITIVE`, where two libraries
use one word for different things. A name in none of these tables is judged by the few word rules
in `bot.metrics.directions`, or not at all.

Sources: scikit-learn's metric functions and scorer names (`sklearn.metrics`, `get_scorer_names()`);
xgboost's `eval_metric` list; LightGBM's `metric` parameter with its aliases; CatBoost's
"Implemented metrics"; statsmodels' results attributes that MLflow's statsmodels autolog logs
(`_autolog_metric_allowlist`) and the usual information criteria; Keras/TensorFlow metric names;
torchmetrics names common in PyTorch Lightning; Hugging Face `transformers` Trainer logs and the
`evaluate` metrics; MLflow's `mlflow.evaluate` built-ins with their `greater_is_better`.
"""

from __future__ import annotations

from bot.models import Direction


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


HIGHER_IS_BETTER = _names(
    """
    score accuracy acc accuracy_score balanced_accuracy balanced_accuracy_score top_k_accuracy
    top_k_accuracy_score binary_accuracy categorical_accuracy sparse_categorical_accuracy
    top_k_categorical_accuracy sparse_top_k_categorical_accuracy
    auc auroc roc_auc roc_auc_score roc_auc_ovr roc_auc_ovo roc_auc_ovr_weighted roc_auc_ovo_weighted
    aucpr pr_auc prauc precision_recall_auc average_precision average_precision_score auc_mu
    precision precision_score precision_micro precision_macro precision_weighted precision_samples
    recall recall_score recall_micro recall_macro recall_weighted recall_samples
    f1 f1_score f1_micro f1_macro f1_weighted f1_samples fbeta fbeta_score totalf1 f
    jaccard jaccard_score jaccard_index iou mean_iou binary_iou one_hot_iou one_hot_mean_iou dice
    matthews_corrcoef matthews_correlation mcc cohen_kappa cohen_kappa_score kappa wkappa
    specificity sensitivity precision_at_recall recall_at_precision sensitivity_at_specificity
    specificity_at_sensitivity true_positives true_negatives
    r2 r2_score rsquared rsquared_adj prsquared explained_variance explained_variance_score
    d2_absolute_error_score d2_pinball_score d2_tweedie_score d2_log_loss_score
    pearson pearsonr pearson_correlation spearman spearmanr concordance_correlation cosine_similarity
    ndcg ndcg_score dcg dcg_score filtereddcg map mean_average_precision pre pfound mrr
    averagegain precisionat recallat queryaverage queryauc pairaccuracy normalizedgini
    balancedaccuracy loglikelihoodofprediction interval-regression-accuracy
    label_ranking_average_precision_score
    adjusted_rand_score rand_score adjusted_mutual_info_score mutual_info_score
    normalized_mutual_info_score homogeneity_score completeness_score v_measure_score
    fowlkes_mallows_score silhouette_score calinski_harabasz_score
    llf llr fvalue log_likelihood loglikelihood loglik
    bleu sacrebleu bleu_score sacre_bleu_score chrf meteor rouge1 rouge2 rougel rougelsum bertscore
    exact_match exact word_info_preserved psnr ssim inception_score
    answer_similarity answer_correctness faithfulness answer_relevance relevance
    samples_per_second steps_per_second tokens_per_second throughput
    """
)

LOWER_IS_BETTER = _names(
    """
    loss logloss log_loss binary_logloss multi_logloss mlogloss nll nloglik
    crossentropy cross_entropy binary_crossentropy categorical_crossentropy
    sparse_categorical_crossentropy binary_focal_crossentropy categorical_focal_crossentropy
    cross_entropy_lambda xentropy xentlambda kullback_leibler kldiv kl_divergence kld
    error err error_rate err_rate binary_error multi_error merror balancederrorrate numerrors
    word_error_rate char_error_rate match_error_rate word_info_lost wer cer ter
    l1 l2 l2_root mse rmse mae mape smape msle rmsle medae mphe huber fair quantile expectile
    loglinquantile lq poisson gamma gamma_deviance tweedie regression_l1 regression_l2
    mean_absolute_error mean_squared_error root_mean_squared_error mean_squared_log_error
    root_mean_squared_log_error mean_squared_logarithmic_error median_absolute_error max_error
    mean_absolute_percentage_error mean_poisson_deviance mean_gamma_deviance mean_tweedie_deviance
    neg_log_likelihood negative_log_likelihood mean_pinball_loss
    logcosh log_cosh log_cosh_error hinge squared_hinge categorical_hinge
    hinge_loss hamming_loss zero_one_loss brier brier_score brier_score_loss brierscore
    coverage_error label_ranking_loss davies_bouldin_score hamming_distance calibration_error
    poisson-nloglik gamma-nloglik cox-nloglik gamma-deviance tweedie-nloglik aft-nloglik
    multiclass multiclassova multiclassonevsall multilogloss multicrossentropy multirmse
    rmsewithuncertainty queryrmse querysoftmax querycrossentropy pairlogit pairlogitpairwise
    yetirank yetirankpairwise stochasticfilter stochasticrank groupquantile cox survivalaft focal
    false_positives false_negatives fpr fnr
    perplexity ppl fid lpips
    aic bic hqic aicc ssr mse_resid f_pvalue llr_pvalue deviance pearson_chi2 sigma2 scale
    condition_number
    latency runtime fit_time score_time
    toxicity flesch_kincaid_grade_level ari_grade_level
    """
)

# Bookkeeping: shown, never judged better or worse.
NEUTRAL = _names(
    """
    epoch epochs step steps global_step iteration iterations iter best_iteration stopped_iteration
    best_epoch lr learning_rate learn_rate momentum weight_decay batch_size grad_norm gradient_norm
    loss_scale total_flos example_count nobs num_samples n_samples
    df_model df_resid centered_tss uncentered_tss mse_model mse_total ess llnull
    sum_on_target mean_on_target token_count
    """
)
# MLflow's `token_count` says greater_is_better, but a longer answer is not a better model: shown
# as bookkeeping here. `ERR` below is CatBoost's expected reciprocal rank, not an error.

CASE_SENSITIVE: dict[str, Direction] = {"ERR": Direction.MAX}

DIRECTIONS: dict[str, Direction] = {
    **{name: Direction.MAX for name in HIGHER_IS_BETTER},
    **{name: Direction.MIN for name in LOWER_IS_BETTER},
    **{name: Direction.NEUTRAL for name in NEUTRAL},
}


def known_direction(name: str) -> Direction | None:
    """The table's direction for `name` (CatBoost's exact names first, then in lower case), or None."""
    if name in CASE_SENSITIVE:
        return CASE_SENSITIVE[name]
    return DIRECTIONS.get(name.lower())
