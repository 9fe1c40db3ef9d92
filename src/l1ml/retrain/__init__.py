"""`l1ml retrain`: train a challenger on new data, score it and the champion by their firmware on the same new test
events, and decide by the config's `promotion` rule whether it replaces the champion."""
