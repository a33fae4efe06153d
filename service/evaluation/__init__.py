"""Exit and Evaluate: the surveys after an introduction, the summary, figures, report and digest."""
