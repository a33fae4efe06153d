"""Mail that arrives: stored before the SMTP answer, then routed to the stage it is for."""
