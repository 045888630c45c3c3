"""Deployment: plans and their preview, approvals, maintenance windows, ringed rollouts, host jobs, rollback."""
