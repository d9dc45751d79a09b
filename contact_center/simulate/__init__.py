"""``contact-center simulate``: a digital twin of a contact center driving a real deployment.

``model`` (pure: scenario, Poisson arrivals, figures, Erlang prediction), ``runner`` (simulated
agents as Socket.IO clients, the run loop and its progress bar), ``drivers`` (how customers
reach each channel), ``report`` (the table and the PNG chart), ``cli`` (the command).
"""
