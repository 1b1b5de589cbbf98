"""What an experiment's results look like to a person: the HTML report."""
