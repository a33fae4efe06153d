"""Pure readers of mail: addresses, bodies, forwards, requests, answers, robots and bounces."""
