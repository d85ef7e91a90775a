"""Site adaptation jobs (issue 24): capture, label with a teacher, fine-tune, register, shadow, promote."""
