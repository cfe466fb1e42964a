"""The operator's commands behind `natix-miner` (`cli`): set-up checks, registration, status and
reports from the journal, a validator-side client, evaluation and calibration on validator-style
challenges, model cards and the photo pool. Tools may use the serving path and the cascade's lab;
the running miner never imports them."""
