"""Stage 4, models at work: training, evaluation, metrics, batch scoring, segments and reports."""
