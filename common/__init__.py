"""What training and the report both read, and nothing that needs torch: the table of the entry scripts' constants
(`constants`), a run as a folder and its files (`runs`), each regulariser's λ / β schedule (`schedules`), the
collapse metrics' names (`collapse_names`) and the form of every hand-written file (`schema`). Its own package so that
both sides import it and neither imports the other: training imports the report's command only to write it, the report
never imports training."""
