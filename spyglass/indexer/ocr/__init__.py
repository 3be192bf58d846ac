"""Reading text in pictures: the RapidOCR reader and the item stage that runs it."""
